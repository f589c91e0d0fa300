//! Field matchers on JSON documents: an RFC 9535 JSONPath (crate
//! `serde_json_path`) and what the nodes it selects must satisfy.
//!
//! One shape serves `assert.fields` (live objects) and `probe.http.expectJson`
//! (a JSON response). Values compare as JSON: numbers and strings as written,
//! so `"1"` never equals `1`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json_path::JsonPath;

/// How much of an observed value evidence shows.
const OBSERVED_PREVIEW: usize = 240;

/// One matcher: `path` and exactly one of `equals`, `contains`, `exists`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldMatch {
    /// RFC 9535 JSONPath, e.g. `$.status.phase` or `$.items[*].name`.
    pub path: String,
    /// Every selected node equals this value (and there is at least one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    /// Some selected node equals this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<Value>,
    /// The path selects something (`true`) or nothing (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exists: Option<bool>,
}

/// A matcher that cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// `path` is not RFC 9535 JSONPath.
    #[error("`{path}` is not a JSONPath (RFC 9535): {reason}")]
    BadPath {
        /// The path as written.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// Not exactly one of `equals`, `contains`, `exists`.
    #[error("`{path}`: expected exactly one of equals, contains, exists; found {found}")]
    Expectation {
        /// The path as written.
        path: String,
        /// How many were given.
        found: usize,
    },
}

/// The result of one matcher on one document.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCheck {
    /// Whether the document satisfies the matcher.
    pub passed: bool,
    /// `path: observed … (expected …)`, for evidence.
    pub line: String,
}

impl FieldMatch {
    /// A matcher `path equals value`.
    pub fn equals(path: impl Into<String>, value: Value) -> FieldMatch {
        FieldMatch {
            path: path.into(),
            equals: Some(value),
            contains: None,
            exists: None,
        }
    }

    /// Checks the matcher itself: a parsable path and one expectation.
    pub fn validate(&self) -> Result<(), MatchError> {
        self.compiled()?;
        let found = usize::from(self.equals.is_some())
            + usize::from(self.contains.is_some())
            + usize::from(self.exists.is_some());
        if found != 1 {
            return Err(MatchError::Expectation {
                path: self.path.clone(),
                found,
            });
        }
        Ok(())
    }

    fn compiled(&self) -> Result<JsonPath, MatchError> {
        JsonPath::parse(&self.path).map_err(|e| MatchError::BadPath {
            path: self.path.clone(),
            reason: e.to_string(),
        })
    }

    /// What the matcher expects, in words.
    pub fn expectation(&self) -> String {
        if let Some(v) = &self.equals {
            format!("equals {v}")
        } else if let Some(v) = &self.contains {
            format!("contains {v}")
        } else if let Some(e) = self.exists {
            if e { "exists" } else { "absent" }.to_string()
        } else {
            "nothing".to_string()
        }
    }

    /// Applies the matcher to `document`; the line says what was observed.
    pub fn check(&self, document: &Value) -> Result<FieldCheck, MatchError> {
        self.validate()?;
        let nodes: Vec<&Value> = self.compiled()?.query(document).all();
        let passed = if let Some(want) = &self.equals {
            !nodes.is_empty() && nodes.iter().all(|n| *n == want)
        } else if let Some(want) = &self.contains {
            nodes.contains(&want)
        } else {
            self.exists == Some(!nodes.is_empty())
        };
        Ok(FieldCheck {
            passed,
            line: format!(
                "{}: {} {} (expected {})",
                self.path,
                if passed { "ok" } else { "MISMATCH" },
                observed(&nodes),
                self.expectation()
            ),
        })
    }
}

/// The nodes a path selected, as evidence shows them.
fn observed(nodes: &[&Value]) -> String {
    let text = match nodes {
        [] => return "observed nothing".to_string(),
        [one] => one.to_string(),
        many => Value::Array(many.iter().map(|v| (*v).clone()).collect()).to_string(),
    };
    let mut end = text.len().min(OBSERVED_PREVIEW);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("observed {}...", &text[..end])
    } else {
        format!("observed {text}")
    }
}

/// `$['a']['b']` for the JSON pointer `/a/b` (digits become indexes), or
/// `$['name']` for a plain top-level name: how the map form of
/// `expectJson` (keys as pointers or names) reads as JSONPath.
pub fn path_of_key(key: &str) -> String {
    let quote = |s: &str| format!("['{}']", s.replace('\\', "\\\\").replace('\'', "\\'"));
    match key.strip_prefix('/') {
        Some(pointer) => {
            let mut path = "$".to_string();
            for segment in pointer.split('/') {
                let segment = segment.replace("~1", "/").replace("~0", "~");
                if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
                    path.push_str(&format!("[{segment}]"));
                } else {
                    path.push_str(&quote(&segment));
                }
            }
            path
        }
        None => format!("${}", quote(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(path: &str, f: impl FnOnce(&mut FieldMatch)) -> FieldMatch {
        let mut m = FieldMatch {
            path: path.into(),
            equals: None,
            contains: None,
            exists: None,
        };
        f(&mut m);
        m
    }

    #[test]
    fn equals_contains_exists_as_json() {
        let doc = json!({"spec": {"replicas": 1, "ports": [{"p": 80}, {"p": 443}]}, "name": "1"});
        let ok = |m: FieldMatch| m.check(&doc).unwrap().passed;
        assert!(ok(m("$.spec.replicas", |m| m.equals = Some(json!(1)))));
        assert!(!ok(m("$.spec.replicas", |m| m.equals = Some(json!("1")))));
        assert!(!ok(m("$.name", |m| m.equals = Some(json!(1)))));
        assert!(ok(m("$.spec.ports[*].p", |m| m.contains = Some(json!(443)))));
        assert!(!ok(m("$.spec.ports[*].p", |m| m.equals = Some(json!(443)))));
        assert!(!ok(
            m("$.spec.ports[*].p", |m| m.contains = Some(json!(8080)))
        ));
        assert!(ok(m("$.spec.missing", |m| m.exists = Some(false))));
        assert!(!ok(m("$.spec.missing", |m| m.exists = Some(true))));
        assert!(!ok(m("$.spec.missing", |m| m.equals = Some(json!(null)))));
        let line = m("$.spec.replicas", |m| m.equals = Some(json!(2)))
            .check(&doc)
            .unwrap()
            .line;
        assert_eq!(
            line,
            "$.spec.replicas: MISMATCH observed 1 (expected equals 2)"
        );
    }

    #[test]
    fn bad_paths_and_expectations_are_refused() {
        let bad = m("$.spec[", |m| m.exists = Some(true));
        assert!(matches!(bad.validate(), Err(MatchError::BadPath { .. })));
        let none = m("$.a", |_| {});
        assert!(matches!(
            none.validate(),
            Err(MatchError::Expectation { found: 0, .. })
        ));
    }

    #[test]
    fn keys_of_the_map_form_read_as_paths() {
        assert_eq!(path_of_key("ray_version"), "$['ray_version']");
        assert_eq!(path_of_key("/a/0/b~1c"), "$['a'][0]['b/c']");
        let doc = json!({"a": [{"b/c": 5}]});
        assert!(
            FieldMatch::equals(path_of_key("/a/0/b~1c"), json!(5))
                .check(&doc)
                .unwrap()
                .passed
        );
    }
}
