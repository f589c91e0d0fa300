//! `probe.http.expectJson`: field matchers on a JSON response.
//!
//! Written as a list of matchers (`{path, equals|contains|exists}`, the
//! same as `assert.fields`), or in the older map form `{key: value}`, where
//! a key is a JSON pointer (`/ray_version`) or a top-level name and the
//! value must be equal; the map form reads as `equals` matchers.

pub use crate::json_match::FieldMatch;
use crate::json_match::path_of_key;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The matchers a JSON response must satisfy (none: the body need not be
/// JSON).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpectJson(pub Vec<FieldMatch>);

impl ExpectJson {
    /// Adds `key` (pointer or top-level name) must equal `value`.
    pub fn insert(&mut self, key: String, value: serde_json::Value) {
        self.0.push(FieldMatch::equals(path_of_key(&key), value));
    }

    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The matchers.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldMatch> {
        self.0.iter()
    }
}

impl From<std::collections::BTreeMap<String, serde_json::Value>> for ExpectJson {
    fn from(map: std::collections::BTreeMap<String, serde_json::Value>) -> ExpectJson {
        let mut expect = ExpectJson::default();
        for (key, value) in map {
            expect.insert(key, value);
        }
        expect
    }
}

impl Serialize for ExpectJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ExpectJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpectVisitor;
        impl<'de> Visitor<'de> for ExpectVisitor {
            type Value = ExpectJson;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of {path, equals|contains|exists}, or a map of key: value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExpectJson, A::Error> {
                let mut matchers = Vec::new();
                while let Some(m) = seq.next_element::<FieldMatch>()? {
                    matchers.push(m);
                }
                Ok(ExpectJson(matchers))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExpectJson, A::Error> {
                let mut expect = ExpectJson::default();
                while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                    expect.insert(key, value);
                }
                Ok(expect)
            }
            fn visit_unit<E>(self) -> Result<ExpectJson, E> {
                Ok(ExpectJson::default())
            }
        }
        deserializer.deserialize_any(ExpectVisitor)
    }
}
