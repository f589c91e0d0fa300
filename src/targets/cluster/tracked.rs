//! What a cluster session applied, in order, so closing it can undo every
//! object (namespaced or cluster-scoped) in reverse, as chainsaw's cleanup
//! does. Deleting the scenario namespace alone would leave a ClusterRole or
//! an IngressClass a step created behind for good.

use crate::k8s::object::ObjectRef;
use crate::targets::Manifest;

/// The objects a session applied and has not deleted since, in the order
/// they were first applied.
#[derive(Debug, Clone, Default)]
pub struct Tracked {
    objects: Vec<ObjectRef>,
}

impl Tracked {
    /// Records an applied object (its namespace as the server resolved it:
    /// `None` for cluster-scoped kinds). Applying it again keeps its first
    /// place: it was created then.
    pub fn record(&mut self, object: &ObjectRef) {
        if !self.objects.contains(object) {
            self.objects.push(object.clone());
        }
    }

    /// Whether an object of this kind and name is recorded, in any
    /// namespace when `object` names none (a manifest before the default
    /// namespace is filled in).
    pub fn contains_named(&self, object: &ObjectRef) -> bool {
        self.objects.iter().any(|o| {
            o.api_version == object.api_version
                && o.kind == object.kind
                && o.name == object.name
                && (object.namespace.is_none() || o.namespace == object.namespace)
        })
    }

    /// Forgets an object that was deleted.
    pub fn forget(&mut self, object: &ObjectRef) {
        self.objects.retain(|o| o != object);
    }

    /// The objects, last applied first: dependants before what they
    /// depend on.
    pub fn in_reverse(&self) -> impl Iterator<Item = &ObjectRef> {
        self.objects.iter().rev()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Forgets everything (after the cleanup ran).
    pub fn clear(&mut self) {
        self.objects.clear();
    }
}

/// The smallest manifest naming `object`: what a delete needs.
pub fn manifest_of(object: &ObjectRef) -> Manifest {
    let mut metadata = serde_json::json!({ "name": object.name });
    if let Some(ns) = &object.namespace {
        metadata["namespace"] = serde_json::Value::String(ns.clone());
    }
    serde_json::json!({
        "apiVersion": object.api_version,
        "kind": object.kind,
        "metadata": metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(kind: &str, ns: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: ns.map(str::to_string),
            name: name.into(),
        }
    }

    #[test]
    fn reverse_order_first_place_kept_and_deleted_ones_forgotten() {
        let mut t = Tracked::default();
        let a = object("ConfigMap", Some("n"), "a");
        let b = object("ClusterRole", None, "b");
        let c = object("Secret", Some("n"), "c");
        t.record(&a);
        t.record(&b);
        t.record(&c);
        t.record(&a);
        assert_eq!(t.in_reverse().collect::<Vec<_>>(), [&c, &b, &a]);
        t.forget(&b);
        assert_eq!(t.in_reverse().collect::<Vec<_>>(), [&c, &a]);
        t.clear();
        assert!(t.is_empty());
    }

    #[test]
    fn the_manifest_names_the_object_again() {
        let namespaced = object("ConfigMap", Some("n"), "a");
        assert_eq!(
            ObjectRef::of(&manifest_of(&namespaced)).unwrap(),
            namespaced
        );
        let cluster = object("ClusterRole", None, "b");
        assert_eq!(ObjectRef::of(&manifest_of(&cluster)).unwrap(), cluster);
    }
}
