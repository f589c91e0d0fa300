//! Rendering [`Routes`] as an nginx.conf with ingress-nginx's semantics.
//!
//! The shape follows what the ingress-nginx controller generates:
//! - one `server` per host on the HTTP port and the TLS port, plus a default
//!   server answering 404 (the controller's default backend);
//! - locations ordered longest path first; `Prefix` paths become an exact and
//!   a `path/` prefix location; when any Ingress of a host uses
//!   `rewrite-target` or `use-regex`, every path of that host becomes
//!   `location ~* "^path"`, and `rewrite-target` adds
//!   `rewrite "(?i)path" target break;`;
//! - `backend-protocol: GRPC` → `grpc_pass grpc://` (TLS listeners speak
//!   HTTP/2, as the controller's 443 does);
//! - with SSL passthrough on, a `stream` server on the HTTPS port reads the
//!   SNI (`ssl_preread`) and forwards passthrough hosts as raw TCP, every
//!   other name to the TLS HTTP servers (the controller's 442 hand-off);
//! - tcp-services → `stream` servers.
//!
//! Unreachable backends are rendered so nginx fails the way the controller
//! does (503 for HTTP; for TCP a dial of the same unresolvable address).

use super::objects::{BackendProtocol, PathType};
use super::routes::{HttpRoute, Routes, Upstream};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The dynamic stream module of Debian's nginx; a config that uses
/// `stream {}` starts with `load_module <this>;`.
pub const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

/// Ports, files and folders of one lab nginx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxSettings {
    /// The dynamic stream module to load.
    pub stream_module: PathBuf,
    /// The ingress HTTP port (`INGRESS_HTTP`).
    pub http_port: u16,
    /// The ingress HTTPS port (`INGRESS_HTTPS`).
    pub https_port: u16,
    /// With SSL passthrough: the internal port of the TLS HTTP servers
    /// (ingress-nginx's 442). Unused otherwise.
    pub tls_internal_port: u16,
    /// `--enable-ssl-passthrough`.
    pub ssl_passthrough: bool,
    /// Certificate of the TLS HTTP servers.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// The controller ConfigMap's `enable-underscores-in-headers: "true"`.
    /// Off by default, as in ingress-nginx: nginx then drops request headers
    /// with underscores, such as the Ray client's `client_id` metadata.
    pub underscores_in_headers: bool,
}

/// Renders the full nginx.conf.
pub fn render(settings: &NginxSettings, routes: &Routes) -> String {
    let mut out = String::new();
    let tls_port = if settings.ssl_passthrough {
        settings.tls_internal_port
    } else {
        settings.https_port
    };
    let _ = writeln!(
        out,
        "# Rendered by rayconform's lab target (ingress-nginx semantics)."
    );
    for note in &routes.notes {
        let _ = writeln!(out, "# note: {}", one_line(note));
    }
    let _ = writeln!(out, "load_module {};", settings.stream_module.display());
    let _ = writeln!(out, "worker_processes 1;");
    // `pid`, `daemon` and the main error log come from the command line
    // (see `nginx::Nginx`); paths below are relative to nginx's prefix.
    let _ = writeln!(out, "events {{ worker_connections 512; }}");
    let _ = writeln!(out, "http {{");
    let _ = writeln!(out, "    access_log logs/access.log;");
    if settings.underscores_in_headers {
        let _ = writeln!(out, "    underscores_in_headers on;");
    }
    for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let _ = writeln!(out, "    {temp}_temp_path tmp/{temp};");
    }
    let _ = writeln!(
        out,
        "    ssl_certificate {};",
        settings.server_cert.display()
    );
    let _ = writeln!(
        out,
        "    ssl_certificate_key {};",
        settings.server_key.display()
    );
    let _ = writeln!(
        out,
        "    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}"
    );

    // The default server: host-less rules, else the default backend (404).
    let _ = writeln!(out, "    server {{");
    let _ = writeln!(
        out,
        "        listen 127.0.0.1:{} default_server;",
        settings.http_port
    );
    let _ = writeln!(
        out,
        "        listen 127.0.0.1:{tls_port} ssl http2 default_server;"
    );
    let _ = writeln!(out, "        server_name _;");
    render_locations(&mut out, &routes.default_host, routes.default_host_regex);
    let _ = writeln!(out, "    }}");
    for host in &routes.hosts {
        let name = host.host.as_deref().unwrap_or("_");
        let _ = writeln!(out, "    server {{");
        let _ = writeln!(out, "        listen 127.0.0.1:{};", settings.http_port);
        let _ = writeln!(out, "        listen 127.0.0.1:{tls_port} ssl http2;");
        let _ = writeln!(out, "        server_name {name};");
        render_locations(&mut out, &host.routes, host.regex);
        let _ = writeln!(out, "    }}");
    }
    super::gateway_conf::render_servers(&mut out, &routes.gateway);
    let _ = writeln!(out, "}}");

    let _ = writeln!(out, "stream {{");
    let _ = writeln!(out, "    access_log off;");
    if settings.ssl_passthrough {
        let _ = writeln!(
            out,
            "    # SSL passthrough: route by SNI before any TLS termination."
        );
        let _ = writeln!(
            out,
            "    map $ssl_preread_server_name $passthrough_upstream {{"
        );
        let mut seen = BTreeSet::new();
        for route in &routes.passthrough {
            if !seen.insert(route.server_name.clone()) {
                continue;
            }
            if let Upstream::Unreachable { why, .. } = &route.upstream {
                let _ = writeln!(out, "        # {}", one_line(why));
            }
            let _ = writeln!(
                out,
                "        {} {};  # {}",
                quoted(&route.server_name),
                dial(&route.upstream),
                route.source
            );
        }
        let _ = writeln!(out, "        default 127.0.0.1:{tls_port};");
        let _ = writeln!(out, "    }}");
        let _ = writeln!(out, "    server {{");
        let _ = writeln!(out, "        listen 127.0.0.1:{};", settings.https_port);
        let _ = writeln!(out, "        ssl_preread on;");
        let _ = writeln!(out, "        proxy_connect_timeout 5s;");
        let _ = writeln!(out, "        proxy_pass $passthrough_upstream;");
        let _ = writeln!(out, "    }}");
    }
    for tcp in &routes.tcp {
        let _ = writeln!(
            out,
            "    # tcp-services {}: {}",
            tcp.service_port, tcp.source
        );
        match &tcp.upstream {
            Upstream::Local(port) => {
                let _ = writeln!(out, "    server {{");
                let _ = writeln!(out, "        listen 127.0.0.1:{};", tcp.listen);
                let _ = writeln!(out, "        proxy_connect_timeout 5s;");
                let _ = writeln!(out, "        proxy_pass 127.0.0.1:{port};");
                let _ = writeln!(out, "    }}");
            }
            Upstream::Unreachable { dial, why } => {
                // A variable makes nginx resolve the name per connection and
                // fail it, as the controller does for a backend with no endpoint.
                let var = format!("$tcp_upstream_{}", tcp.listen);
                let _ = writeln!(out, "    # {}", one_line(why));
                let _ = writeln!(
                    out,
                    "    map $server_port {var} {{ default {}; }}",
                    quoted(dial)
                );
                let _ = writeln!(out, "    server {{");
                let _ = writeln!(out, "        listen 127.0.0.1:{};", tcp.listen);
                let _ = writeln!(out, "        proxy_pass {var};");
                let _ = writeln!(out, "    }}");
            }
        }
    }
    let _ = writeln!(out, "}}");
    out
}

fn render_locations(out: &mut String, routes: &[HttpRoute], regex: bool) {
    let mut seen = BTreeSet::new();
    let mut has_root = false;
    for route in routes {
        let selectors: Vec<String> = if regex {
            vec![format!("~* {}", quoted(&format!("^{}", route.path)))]
        } else {
            match route.path_type {
                PathType::Exact => vec![format!("= {}", route.path)],
                PathType::Prefix if route.path == "/" => vec!["/".to_string()],
                PathType::Prefix => {
                    let trimmed = route.path.trim_end_matches('/');
                    vec![format!("= {trimmed}"), format!("{trimmed}/")]
                }
                PathType::ImplementationSpecific => vec![route.path.clone()],
            }
        };
        for selector in selectors {
            if !seen.insert(selector.clone()) {
                let _ = writeln!(
                    out,
                    "        # {} {selector} from {} shadowed by an earlier Ingress",
                    route.path, route.source
                );
                continue;
            }
            has_root |= selector == "/";
            let _ = writeln!(out, "        location {selector} {{  # {}", route.source);
            render_location_body(out, route, regex);
            let _ = writeln!(out, "        }}");
        }
    }
    if !has_root {
        let _ = writeln!(
            out,
            "        location / {{ return 404; }}  # default backend"
        );
    }
}

fn render_location_body(out: &mut String, route: &HttpRoute, regex: bool) {
    if let (Some(target), true) = (&route.rewrite_target, regex) {
        let _ = writeln!(
            out,
            "            rewrite {} {} break;",
            quoted(&format!("(?i){}", route.path)),
            target
        );
    }
    let port = match &route.upstream {
        Upstream::Local(port) => *port,
        Upstream::Unreachable { why, .. } => {
            let _ = writeln!(out, "            # {}", one_line(why));
            let _ = writeln!(out, "            return 503;");
            return;
        }
    };
    match route.protocol {
        BackendProtocol::Grpc | BackendProtocol::Grpcs => {
            let scheme = if route.protocol == BackendProtocol::Grpc {
                "grpc"
            } else {
                "grpcs"
            };
            let _ = writeln!(out, "            grpc_pass {scheme}://127.0.0.1:{port};");
        }
        BackendProtocol::Http | BackendProtocol::Https => {
            let scheme = if route.protocol == BackendProtocol::Http {
                "http"
            } else {
                "https"
            };
            for (header, value) in [
                ("Host", "$host"),
                ("X-Real-IP", "$remote_addr"),
                ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
                ("X-Forwarded-Host", "$host"),
                ("X-Forwarded-Proto", "$scheme"),
                ("Upgrade", "$http_upgrade"),
                ("Connection", "$connection_upgrade"),
            ] {
                let _ = writeln!(out, "            proxy_set_header {header} {value};");
            }
            let _ = writeln!(out, "            proxy_http_version 1.1;");
            let _ = writeln!(out, "            proxy_pass {scheme}://127.0.0.1:{port};");
        }
    }
}

fn dial(upstream: &Upstream) -> String {
    match upstream {
        Upstream::Local(port) => format!("127.0.0.1:{port}"),
        Upstream::Unreachable { dial, .. } => quoted(dial),
    }
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}
