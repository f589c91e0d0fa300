//! Live objects by selector: listing (for `assert` and `logs`) and deleting
//! (`delete: {select}`), for any kind the API server knows.

use super::object::ObjectRef;
use super::select_spec::ObjectSelector;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, ObjectList};
use kube::core::GroupVersionKind;
use kube::discovery::{self, Scope};
use kube::{Client, ResourceExt};

/// Why objects could not be listed or deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Discovery does not know the kind.
    #[error("unknown kind {kind} in {api_version}: {reason}")]
    UnknownKind {
        /// As written.
        api_version: String,
        /// As written.
        kind: String,
        /// Discovery's answer.
        reason: String,
    },
    /// The API server refused or could not be reached.
    #[error("{what} failed: {reason}")]
    Api {
        /// What was being done.
        what: String,
        /// The API server's or the transport's message.
        reason: String,
    },
}

/// The API for the selector's kind, in its namespace (the default when it
/// names none; none for a cluster-scoped kind).
async fn api_for(
    client: &Client,
    selector: &ObjectSelector,
    default_namespace: &str,
) -> Result<Api<DynamicObject>, QueryError> {
    let (group, version) = match selector.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", selector.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &selector.kind);
    let (resource, capabilities) =
        discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| QueryError::UnknownKind {
                api_version: selector.api_version.clone(),
                kind: selector.kind.clone(),
                reason: e.to_string(),
            })?;
    Ok(match capabilities.scope {
        Scope::Namespaced => {
            let ns = selector.namespace.as_deref().unwrap_or(default_namespace);
            Api::namespaced_with(client.clone(), ns, &resource)
        }
        Scope::Cluster => Api::all_with(client.clone(), &resource),
    })
}

fn list_params(selector: &ObjectSelector) -> ListParams {
    let mut params = ListParams::default();
    if let Some(name) = &selector.name {
        params = params.fields(&format!("metadata.name={name}"));
    }
    if let Some(labels) = &selector.label_selector {
        params = params.labels(labels);
    }
    params
}

/// The selected objects as JSON, sorted by namespace and name.
pub async fn list(
    client: &Client,
    selector: &ObjectSelector,
    default_namespace: &str,
) -> Result<Vec<serde_json::Value>, QueryError> {
    let (_, listed) = list_selected(client, selector, default_namespace).await?;
    let mut items: Vec<DynamicObject> = listed.items;
    items.sort_by_key(|o| (o.namespace(), o.name_any()));
    Ok(items
        .into_iter()
        .map(|mut o| {
            // List items often come without their type; assertions may ask.
            if o.types.is_none() {
                o.types = Some(kube::core::TypeMeta {
                    api_version: selector.api_version.clone(),
                    kind: selector.kind.clone(),
                });
            }
            serde_json::to_value(&o).unwrap_or_default()
        })
        .collect())
}

/// Deletes every selected object; returns what was deleted (none is not an
/// error: the selection was empty).
pub async fn delete(
    client: &Client,
    selector: &ObjectSelector,
    default_namespace: &str,
) -> Result<Vec<ObjectRef>, QueryError> {
    let (api, listed) = list_selected(client, selector, default_namespace).await?;
    let mut deleted = Vec::new();
    for object in listed.items {
        let name = object.name_any();
        let namespace = object.namespace();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            // Gone meanwhile: what was asked for holds.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                return Err(QueryError::Api {
                    what: format!("deleting {} {name}", selector.kind),
                    reason: e.to_string(),
                });
            }
        }
        deleted.push(ObjectRef {
            api_version: selector.api_version.clone(),
            kind: selector.kind.clone(),
            namespace,
            name,
        });
    }
    Ok(deleted)
}

/// The selected objects' API and their current list.
async fn list_selected(
    client: &Client,
    selector: &ObjectSelector,
    default_namespace: &str,
) -> Result<(Api<DynamicObject>, ObjectList<DynamicObject>), QueryError> {
    let api = api_for(client, selector, default_namespace).await?;
    let listed = api
        .list(&list_params(selector))
        .await
        .map_err(|e| QueryError::Api {
            what: format!("listing {selector}"),
            reason: e.to_string(),
        })?;
    Ok((api, listed))
}
