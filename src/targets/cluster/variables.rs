//! The template variables a cluster target publishes for reaching its
//! ingress from the host.

use super::installs::tcp_service_ports;
use crate::install;
use crate::scenario::Install;
use std::collections::BTreeMap;

/// Variables for a cluster whose node ports are mapped to host ports
/// (`container port → host port`, as kind and k3s do): INGRESS_HOST,
/// INGRESS_HTTP/HTTPS, `INGRESS_TCP_<port>`, and KUBERAY_APISERVER when
/// NodePort 31888 is mapped.
pub fn mapped_port_variables(
    host_ports: &BTreeMap<u16, u16>,
    installs: &[Install],
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    vars.insert("INGRESS_HOST".to_string(), "localhost".to_string());
    let at = |container: u16| host_ports.get(&container).map(|h| format!("localhost:{h}"));
    if let Some(a) = at(80) {
        vars.insert("INGRESS_HTTP".into(), a);
    }
    if let Some(a) = at(443) {
        vars.insert("INGRESS_HTTPS".into(), a);
    }
    for port in tcp_service_ports(installs) {
        if let Some(a) = at(port) {
            vars.insert(format!("INGRESS_TCP_{port}"), a);
        }
    }
    if let Some(a) = at(install::kuberay_apiserver::NODE_PORT) {
        vars.insert("KUBERAY_APISERVER".into(), a);
    }
    vars.extend(port_forward_placeholders(installs));
    vars.insert(
        super::session::INGRESS_NODE_IP.into(),
        "<InternalIP of the ingress-ready node, read at run time>".into(),
    );
    vars
}

/// The port-forward variables the installs ask for, as the plan shows
/// them (the session replaces each with its real loopback address).
pub fn port_forward_placeholders(installs: &[Install]) -> BTreeMap<String, String> {
    install::port_forwards(installs)
        .into_iter()
        .map(|f| {
            (
                f.variable,
                "127.0.0.1:<port-forward chosen at run time>".to_string(),
            )
        })
        .collect()
}
