//! The Envoy Gateway extension kinds rayconform writes
//! (gateway.envoyproxy.io/v1alpha1, Envoy Gateway v1.9.0): a
//! `ClientTrafficPolicy` for header handling and the `EnvoyProxy` that
//! shapes the data plane's Deployment and Service.

use super::meta::{LocalPolicyTargetRef, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A `ClientTrafficPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTrafficPolicy {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: ClientTrafficPolicySpec,
}

/// `ClientTrafficPolicy.spec` (headers only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTrafficPolicySpec {
    /// `targetRefs`: the Gateway (and listener).
    pub target_refs: Vec<LocalPolicyTargetRef>,
    /// `headers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HeaderSettings>,
}

/// `ClientTrafficPolicy.spec.headers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderSettings {
    /// `withUnderscoresAction`; Envoy Gateway's default is `RejectRequest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_underscores_action: Option<WithUnderscoresAction>,
}

/// `headers.withUnderscoresAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WithUnderscoresAction {
    /// Pass headers with underscores through.
    Allow,
    /// Reject the request (HTTP/2: reset the stream): the default.
    RejectRequest,
    /// Drop such headers.
    DropHeader,
}

/// An `EnvoyProxy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyProxy {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: EnvoyProxySpec,
}

/// `EnvoyProxy.spec` (the Kubernetes provider only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyProxySpec {
    /// `provider`.
    pub provider: EnvoyProxyProvider,
}

/// `EnvoyProxy.spec.provider`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyProxyProvider {
    /// `type`: `Kubernetes`.
    #[serde(rename = "type")]
    pub provider_type: String,
    /// `kubernetes`.
    pub kubernetes: EnvoyProxyKubernetes,
}

/// `provider.kubernetes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyProxyKubernetes {
    /// `envoyDeployment`.
    pub envoy_deployment: EnvoyDeployment,
    /// `envoyService`.
    pub envoy_service: EnvoyService,
}

/// `kubernetes.envoyDeployment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyDeployment {
    /// `replicas`.
    pub replicas: u32,
    /// `pod`.
    pub pod: EnvoyPod,
    /// `patch`: a strategic-merge patch of the Deployment.
    pub patch: KubernetesPatch,
}

/// `envoyDeployment.pod` (scheduling only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyPod {
    /// `nodeSelector`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// `tolerations` (core/v1 Toleration objects).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Value>,
}

/// `envoyDeployment.patch` / `envoyService.patch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesPatch {
    /// `type`: `StrategicMerge` or `JSONMerge`.
    #[serde(rename = "type")]
    pub patch_type: String,
    /// `value`: the patch.
    pub value: Value,
}

/// `kubernetes.envoyService`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyService {
    /// `type`: `ClusterIP`, `NodePort` or `LoadBalancer` (the default).
    #[serde(rename = "type")]
    pub service_type: String,
}
