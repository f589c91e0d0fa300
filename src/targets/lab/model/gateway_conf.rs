//! Rendering Gateway API HTTP and gRPC servers into the lab's nginx `http`
//! block, shaped like NGINX Gateway Fabric's (v2.6.7) configuration: one
//! server per listener and hostnames, PathPrefix locations `/p/` and
//! `= /p`, `rewrite ... break` for URLRewrite, `proxy_pass` for HTTPRoute,
//! `grpc_pass grpc://` on an HTTP/2 cleartext listener for GRPCRoute, and a
//! 404 for every path no route matches. TLS passthrough routes are rendered
//! by `nginx_conf` with the ingress's SNI map.

use super::gateway::{GatewayHttpServer, GatewayRoutes};
use super::routes::Upstream;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Appends the servers of `routes` (inside `http {}`).
pub fn render_servers(out: &mut String, routes: &GatewayRoutes) {
    if routes.servers.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "    # Gateway API routes, with NGINX Gateway Fabric's semantics (modelled)."
    );
    let mut defaults = BTreeSet::new();
    for server in &routes.servers {
        render_server(out, server, defaults.insert(server.listen));
    }
}

fn render_server(out: &mut String, server: &GatewayHttpServer, first_on_port: bool) {
    let http2 = if server.grpc { " http2" } else { "" };
    // The ingress's own default server holds the HTTP port; a listener port
    // of its own gets its first server as the default one.
    let default = if first_on_port && server.grpc {
        " default_server"
    } else {
        ""
    };
    let _ = writeln!(out, "    server {{  # listener {}", server.listener);
    let _ = writeln!(
        out,
        "        listen 127.0.0.1:{}{http2}{default};",
        server.listen
    );
    let _ = writeln!(out, "        server_name {};", server.hostnames.join(" "));
    let mut has_root = false;
    for location in &server.locations {
        has_root |= location.selector == "/";
        let _ = writeln!(
            out,
            "        location {} {{  # {}",
            location.selector, location.source
        );
        if let Some(rewrite) = &location.rewrite {
            let _ = writeln!(out, "            rewrite {rewrite} break;");
        }
        match (&location.upstream, server.grpc) {
            (Upstream::Unreachable { why, .. }, _) => {
                let _ = writeln!(out, "            # {}", why.replace(['\n', '\r'], " "));
                let _ = writeln!(out, "            return 503;");
            }
            (Upstream::Local(port), true) => {
                let _ = writeln!(out, "            grpc_pass grpc://127.0.0.1:{port};");
            }
            (Upstream::Local(port), false) => {
                for (header, value) in [
                    ("Host", "$host"),
                    ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
                    ("X-Real-IP", "$remote_addr"),
                    ("X-Forwarded-Proto", "$scheme"),
                    ("X-Forwarded-Host", "$host"),
                    ("X-Forwarded-Port", "$server_port"),
                    ("Upgrade", "$http_upgrade"),
                    ("Connection", "$connection_upgrade"),
                ] {
                    let _ = writeln!(out, "            proxy_set_header {header} \"{value}\";");
                }
                let _ = writeln!(out, "            proxy_http_version 1.1;");
                let _ = writeln!(out, "            proxy_pass http://127.0.0.1:{port};");
            }
        }
        let _ = writeln!(out, "        }}");
    }
    if !has_root {
        let _ = writeln!(out, "        location / {{ return 404; }}");
    }
    let _ = writeln!(out, "    }}");
}
