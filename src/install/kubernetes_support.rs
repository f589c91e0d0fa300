//! Which Kubernetes versions a component release supports, and the skip
//! reason when it does not.

/// A component release line and the Kubernetes minors it supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportWindow {
    /// Release line this row describes (`1.15`, `1.30`).
    pub release: &'static str,
    /// Oldest supported Kubernetes minor.
    pub min_minor: u32,
    /// Newest supported Kubernetes minor.
    pub max_minor: u32,
}

/// The words every [`unsupported`] reason carries.
const SUPPORTS: &str = "supports Kubernetes";

/// The minor number of `1.35` or `1.35.8` (35), if it parses.
fn minor_number(version: &str) -> Option<u32> {
    let mut parts = version.trim_start_matches('v').split('.');
    match (parts.next(), parts.next()) {
        (Some("1"), Some(minor)) => minor.parse().ok(),
        _ => None,
    }
}

/// Why `component` at `component_version` cannot run on Kubernetes
/// `k8s_version` according to `windows`, or `None` when it can (or when no
/// window covers that release, e.g. KubeRay, which states no upper bound).
pub fn unsupported(
    component: &str,
    component_version: &str,
    windows: &[SupportWindow],
    k8s_version: &str,
) -> Option<String> {
    let minor = minor_number(k8s_version)?;
    let row = windows.iter().find(|r| {
        component_version == r.release
            || component_version
                .trim_start_matches('v')
                .starts_with(&format!("{}.", r.release))
    })?;
    if (row.min_minor..=row.max_minor).contains(&minor) {
        None
    } else {
        Some(format!(
            "{component} {component_version} {SUPPORTS} 1.{}–1.{} only, not {k8s_version}",
            row.min_minor, row.max_minor
        ))
    }
}

/// Whether a skip reason is an [`unsupported`] one of a registered
/// component (reports count them per version).
pub fn is_component_support_reason(reason: &str) -> bool {
    let known = super::registry::Install::NAMES
        .iter()
        .any(|name| reason.starts_with(&format!("{name} ")));
    known && reason.contains(&format!(" {SUPPORTS} 1.")) && reason.contains(" only, not ")
}

#[cfg(test)]
mod tests {
    use super::super::component::Component;
    use super::super::{
        ingress_nginx::IngressNginxInstall, istio::IstioInstall,
        kuberay_operator::KuberayOperatorInstall,
    };
    use super::*;

    fn istio(version: &str) -> IstioInstall {
        IstioInstall {
            version: Some(version.into()),
            ..Default::default()
        }
    }

    #[test]
    fn component_windows_decide_support() {
        let nginx = IngressNginxInstall::default();
        assert_eq!(nginx.unsupported_on("1.35"), None);
        let why = nginx.unsupported_on("1.36.4").unwrap();
        assert!(why.contains("1.31–1.35"), "{why}");
        assert!(is_component_support_reason(&why), "{why}");
        assert!(istio("1.30.4").unsupported_on("1.31").is_some());
        assert_eq!(istio("1.29.2").unsupported_on("1.31"), None);
        assert_eq!(
            KuberayOperatorInstall {
                version: Some("1.7.0".into()),
                ..Default::default()
            }
            .unsupported_on("1.37"),
            None
        );
        assert!(!is_component_support_reason("istio needs `istioctl`"));
    }
}
