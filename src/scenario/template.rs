//! `${VAR}` templates in scenario strings and manifests.
//!
//! Variables come from the run (namespace, cluster name, ingress addresses)
//! and from the environment. An unknown variable is an error, never an
//! empty string.

use std::collections::BTreeMap;

/// Names every target provides at run time; `INGRESS_TCP_<port>` comes on
/// top for each TCP service port.
pub const RUN_VARIABLES: &[&str] = &[
    "NAMESPACE",
    "RUN_ID",
    "SCENARIO",
    "CLUSTER_NAME",
    "INGRESS_HOST",
    "INGRESS_HTTP",
    "INGRESS_HTTPS",
    "INGRESS_NODE_IP",
];

/// `host:port` of the KubeRay apiserver's NodePort 31888, which cluster
/// targets publish when they map it (kind's configs, k3s with
/// `install.kuberayApiserver`).
pub const TARGET_VARIABLE_KUBERAY_APISERVER: &str = "KUBERAY_APISERVER";

/// A template problem: the variable name that could not be resolved, or a
/// malformed `${`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `${NAME}` with no value.
    #[error("unknown variable ${{{name}}} (known: {known})")]
    Unknown {
        /// The variable.
        name: String,
        /// The names that were available, comma-separated.
        known: String,
    },
    /// `${` without a closing `}` or with an invalid name.
    #[error(
        "malformed template near `{0}`: write ${{NAME}} with NAME in [A-Z0-9_], or $$ for a literal $"
    )]
    Malformed(String),
}

/// The variable names referenced by `text`.
pub fn references(text: &str) -> Result<Vec<String>, TemplateError> {
    let mut names = Vec::new();
    render_with(text, &mut |name| {
        names.push(name.to_string());
        Some(String::new())
    })?;
    Ok(names)
}

/// Replaces every `${NAME}` in `text` using `vars`; `$$` is a literal `$`.
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> Result<String, TemplateError> {
    let mut missing = None;
    let out = render_with(text, &mut |name| {
        let value = vars.get(name).cloned();
        if value.is_none() && missing.is_none() {
            missing = Some(name.to_string());
        }
        value
    });
    if let Some(name) = missing {
        return Err(TemplateError::Unknown {
            name,
            known: vars.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    }
    out
}

/// Renders every string inside a JSON value (keys included) in place.
pub fn render_json(
    value: &mut serde_json::Value,
    vars: &BTreeMap<String, String>,
) -> Result<(), TemplateError> {
    match value {
        serde_json::Value::String(s) => *s = render(s, vars)?,
        serde_json::Value::Array(items) => {
            for item in items {
                render_json(item, vars)?;
            }
        }
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                render_json(&mut item, vars)?;
                map.insert(render(&key, vars)?, item);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether `name` is a variable the run provides (or the environment has).
pub fn is_known(name: &str) -> bool {
    RUN_VARIABLES.contains(&name)
        || name == TARGET_VARIABLE_KUBERAY_APISERVER
        || name
            .strip_prefix("INGRESS_TCP_")
            .is_some_and(|port| port.parse::<u16>().is_ok())
        || std::env::var_os(name).is_some()
}

fn render_with(
    text: &str,
    lookup: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| TemplateError::Malformed(excerpt(&rest[pos..])))?;
            let name = &body[..end];
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(TemplateError::Malformed(excerpt(&rest[pos..])));
            }
            out.push_str(&lookup(name).unwrap_or_default());
            rest = &body[end + 1..];
        } else {
            // A lone `$` (e.g. nginx's `$2` in a rewrite) is literal text.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn excerpt(text: &str) -> String {
    text.chars().take(24).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("NAMESPACE".to_string(), "rc-1".to_string()),
            ("INGRESS_HTTPS".to_string(), "localhost:443".to_string()),
        ])
    }

    #[test]
    fn replaces_known_variables_and_keeps_literal_dollars() {
        let out = render(
            "ns=${NAMESPACE} at ${INGRESS_HTTPS} rewrite /$2 cost $$5",
            &vars(),
        )
        .unwrap();
        assert_eq!(out, "ns=rc-1 at localhost:443 rewrite /$2 cost $5");
    }

    #[test]
    fn unknown_variable_is_an_error_naming_it() {
        let err = render("x ${NOPE} y", &vars()).unwrap_err();
        assert!(
            matches!(&err, TemplateError::Unknown { name, .. } if name == "NOPE"),
            "{err}"
        );
        assert!(
            err.to_string().contains("NAMESPACE"),
            "lists known names: {err}"
        );
    }

    #[test]
    fn malformed_templates_are_errors() {
        assert!(matches!(
            render("${UNCLOSED", &vars()),
            Err(TemplateError::Malformed(_))
        ));
        assert!(matches!(
            render("${lower}", &vars()),
            Err(TemplateError::Malformed(_))
        ));
        assert!(matches!(
            render("${}", &vars()),
            Err(TemplateError::Malformed(_))
        ));
    }

    #[test]
    fn renders_json_strings_and_keys() {
        let mut v = serde_json::json!({"metadata": {"namespace": "${NAMESPACE}"}, "${NAMESPACE}": [1, "${INGRESS_HTTPS}"]});
        render_json(&mut v, &vars()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"metadata": {"namespace": "rc-1"}, "rc-1": [1, "localhost:443"]})
        );
    }

    #[test]
    fn references_lists_names_in_order() {
        assert_eq!(references("${A}-${B_2}$$").unwrap(), vec!["A", "B_2"]);
        assert!(is_known("INGRESS_TCP_10001"));
        assert!(is_known("KUBERAY_APISERVER"));
        assert!(!is_known("INGRESS_TCP_x"));
    }
}
