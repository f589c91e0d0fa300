//! Server-side apply and deletion of any kind of object, resolved through
//! discovery (one discovery request per API group version, cached).

use super::object::{NotAnObject, ObjectRef};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{self, ApiCapabilities, ApiResource, Scope};
use std::collections::HashMap;

/// The field manager rayconform applies as.
pub const FIELD_MANAGER: &str = "rayconform";

/// Why an apply or delete did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The manifest names no object.
    #[error("manifest #{index}: {source}")]
    Invalid {
        /// 1-based position in the input.
        index: usize,
        /// What is missing.
        source: NotAnObject,
    },
    /// The cluster does not serve this kind.
    #[error("{object}: the cluster does not serve {api_version} {kind}: {reason}")]
    UnknownKind {
        /// The object.
        object: ObjectRef,
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
        /// Discovery's answer.
        reason: String,
    },
    /// The API server (or an admission webhook) refused the request.
    #[error("{object}: refused ({code} {reason}): {message}")]
    Refused {
        /// The object.
        object: ObjectRef,
        /// HTTP status code.
        code: u16,
        /// `Status.reason`, e.g. `BadRequest`, `Forbidden`, `Invalid`.
        reason: String,
        /// `Status.message`, e.g. the admission webhook's denial.
        message: String,
    },
    /// The API server could not be reached or answered nonsense.
    #[error("{object}: {reason}")]
    Transport {
        /// The object.
        object: ObjectRef,
        /// What went wrong.
        reason: String,
    },
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The object, with its namespace resolved.
    pub object: ObjectRef,
    /// Its `resourceVersion` after the request (empty after a delete).
    pub resource_version: String,
}

/// One object an [`Applier`] applied and has not deleted since: what
/// cleanup needs to delete it again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppliedRef {
    /// `apiVersion`, e.g. `rbac.authorization.k8s.io/v1`.
    pub api_version: String,
    /// `kind`, e.g. `ClusterRole`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// The namespace it was applied in; `None` for a cluster-scoped object.
    pub namespace: Option<String>,
}

impl AppliedRef {
    fn of(object: &ObjectRef) -> AppliedRef {
        AppliedRef {
            api_version: object.api_version.clone(),
            kind: object.kind.clone(),
            name: object.name.clone(),
            namespace: object.namespace.clone(),
        }
    }

    fn object(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

impl std::fmt::Display for AppliedRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.object().fmt(f)
    }
}

/// Applies and deletes objects of any kind, remembering discovery answers
/// and which objects it applied (see [`Applier::applied`]).
pub struct Applier {
    client: Client,
    resources: HashMap<(String, String), (ApiResource, ApiCapabilities)>,
    applied: Vec<AppliedRef>,
}

impl Applier {
    /// An applier using `client`.
    pub fn new(client: Client) -> Applier {
        Applier {
            client,
            resources: HashMap::new(),
            applied: Vec::new(),
        }
    }

    /// The objects this applier applied and has not deleted since, each
    /// once, in the order they were first applied: deleting them in
    /// reverse order undoes a scenario, cluster-scoped objects included.
    pub fn applied(&self) -> &[AppliedRef] {
        &self.applied
    }

    /// Server-side applies one manifest (field manager `rayconform`, forcing
    /// conflicts: the scenario owns what it declares). Namespaced objects
    /// without a namespace go to `default_namespace`.
    pub async fn apply(
        &mut self,
        index: usize,
        manifest: &serde_json::Value,
        default_namespace: &str,
    ) -> Result<Applied, ApplyError> {
        let (api, object, body) = self.api_for(index, manifest, default_namespace).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let result = api.patch(&object.name, &params, &Patch::Apply(&body)).await;
        match result {
            Ok(stored) => {
                self.remember(&object);
                Ok(Applied {
                    resource_version: stored.metadata.resource_version.unwrap_or_default(),
                    object,
                })
            }
            Err(e) => Err(classify(object, e)),
        }
    }

    /// Server-side applies with `dryRun=All`: admission webhooks run, nothing
    /// is stored. Used to ask whether a webhook answers.
    pub async fn apply_dry_run(
        &mut self,
        manifest: &serde_json::Value,
        default_namespace: &str,
    ) -> Result<(), ApplyError> {
        let (api, object, body) = self.api_for(1, manifest, default_namespace).await?;
        let params = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        api.patch(&object.name, &params, &Patch::Apply(&body))
            .await
            .map(|_| ())
            .map_err(|e| classify(object, e))
    }

    /// Whether the object a manifest names exists now (so a caller can
    /// tell what it created from what it only changed).
    pub async fn exists(
        &mut self,
        index: usize,
        manifest: &serde_json::Value,
        default_namespace: &str,
    ) -> Result<bool, ApplyError> {
        let (api, object, _) = self.api_for(index, manifest, default_namespace).await?;
        match api.get_opt(&object.name).await {
            Ok(found) => Ok(found.is_some()),
            Err(e) => Err(classify(object, e)),
        }
    }

    /// Deletes the object a manifest names (background propagation). An
    /// object that is already gone counts as deleted.
    pub async fn delete(
        &mut self,
        index: usize,
        manifest: &serde_json::Value,
        default_namespace: &str,
    ) -> Result<Applied, ApplyError> {
        let (api, object, _) = self.api_for(index, manifest, default_namespace).await?;
        self.delete_object(api, object).await
    }

    /// Deletes one object this applier applied (background propagation),
    /// e.g. while undoing a scenario in the reverse order of
    /// [`Applier::applied`]. An object that is already gone counts as
    /// deleted.
    pub async fn delete_ref(&mut self, applied: &AppliedRef) -> Result<Applied, ApplyError> {
        let mut object = applied.object();
        // The namespace was resolved when it was applied: no default needed.
        let api = self.api_for_object(&mut object, "").await?;
        self.delete_object(api, object).await
    }

    async fn delete_object(
        &mut self,
        api: Api<DynamicObject>,
        object: ObjectRef,
    ) -> Result<Applied, ApplyError> {
        match api.delete(&object.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(classify(object, e)),
        }
        let gone = AppliedRef::of(&object);
        self.applied.retain(|a| *a != gone);
        Ok(Applied {
            object,
            resource_version: String::new(),
        })
    }

    /// Records a successful apply once, keeping its first position.
    fn remember(&mut self, object: &ObjectRef) {
        let applied = AppliedRef::of(object);
        if !self.applied.contains(&applied) {
            self.applied.push(applied);
        }
    }

    /// The API for the manifest's kind, its resolved name, and the body with
    /// the namespace filled in.
    async fn api_for(
        &mut self,
        index: usize,
        manifest: &serde_json::Value,
        default_namespace: &str,
    ) -> Result<(Api<DynamicObject>, ObjectRef, serde_json::Value), ApplyError> {
        let mut object =
            ObjectRef::of(manifest).map_err(|source| ApplyError::Invalid { index, source })?;
        let api = self.api_for_object(&mut object, default_namespace).await?;
        let mut body = manifest.clone();
        if let Some(namespace) = &object.namespace {
            body["metadata"]["namespace"] = serde_json::Value::String(namespace.clone());
        }
        Ok((api, object, body))
    }

    /// The API for the object's kind; resolves its namespace (the default
    /// when a namespaced object names none, `None` when cluster-scoped).
    async fn api_for_object(
        &mut self,
        object: &mut ObjectRef,
        default_namespace: &str,
    ) -> Result<Api<DynamicObject>, ApplyError> {
        let (resource, capabilities) = self.resolve(object).await?;
        Ok(match capabilities.scope {
            Scope::Namespaced => {
                let namespace = object
                    .namespace
                    .get_or_insert_with(|| default_namespace.to_string());
                Api::namespaced_with(self.client.clone(), namespace, &resource)
            }
            Scope::Cluster => {
                object.namespace = None;
                Api::all_with(self.client.clone(), &resource)
            }
        })
    }

    async fn resolve(
        &mut self,
        object: &ObjectRef,
    ) -> Result<(ApiResource, ApiCapabilities), ApplyError> {
        let key = (object.api_version.clone(), object.kind.clone());
        if let Some(found) = self.resources.get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = object.group_version();
        let gvk = GroupVersionKind::gvk(group, version, &object.kind);
        let found = discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| ApplyError::UnknownKind {
                object: object.clone(),
                api_version: object.api_version.clone(),
                kind: object.kind.clone(),
                reason: e.to_string(),
            })?;
        self.resources.insert(key, found.clone());
        Ok(found)
    }
}

fn classify(object: ObjectRef, error: kube::Error) -> ApplyError {
    match error {
        kube::Error::Api(status) => ApplyError::Refused {
            object,
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        other => ApplyError::Transport {
            object,
            reason: other.to_string(),
        },
    }
}
