//! Naming the objects a manifest describes.

use std::fmt;

/// Which object a manifest names: enough to find it again and to say which
/// one went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `apiVersion`, e.g. `ray.io/v1`.
    pub api_version: String,
    /// `kind`, e.g. `RayCluster`.
    pub kind: String,
    /// `metadata.namespace` as written (the default is applied later).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

/// A manifest that does not name an object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Kubernetes object: {0}")]
pub struct NotAnObject(pub String);

impl ObjectRef {
    /// Reads `apiVersion`, `kind`, `metadata.name` and `metadata.namespace`.
    pub fn of(manifest: &serde_json::Value) -> Result<ObjectRef, NotAnObject> {
        let text = |pointer: &str| manifest.pointer(pointer).and_then(|v| v.as_str());
        let field = |pointer: &str, what: &str| {
            text(pointer)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| NotAnObject(format!("`{what}` is missing")))
        };
        Ok(ObjectRef {
            api_version: field("/apiVersion", "apiVersion")?,
            kind: field("/kind", "kind")?,
            name: field("/metadata/name", "metadata.name")?,
            namespace: text("/metadata/namespace").map(str::to_string),
        })
    }

    /// `(group, version)` from `apiVersion` (`""` for the core group).
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", self.api_version.as_str()),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_group_versions() {
        let o = ObjectRef::of(
            &json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "rc"}}),
        )
        .unwrap();
        assert_eq!(o.group_version(), ("ray.io", "v1"));
        assert_eq!(o.to_string(), "RayCluster rc");
        let core = ObjectRef::of(&json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "n"}})).unwrap();
        assert_eq!(core.group_version(), ("", "v1"));
        assert_eq!(core.to_string(), "Service n/s");
        let err = ObjectRef::of(&json!({"apiVersion": "v1", "kind": "Service"})).unwrap_err();
        assert!(err.to_string().contains("metadata.name"));
    }
}
