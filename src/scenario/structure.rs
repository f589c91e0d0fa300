//! The structural pass: every unknown field and every wrong type in a file,
//! in one pass, each at its own location.
//!
//! serde stops at the first error it meets. So the YAML is first read into a
//! tree of nodes that know where they are (serde-saphyr does the YAML, its
//! limits and its locations), and the scenario types are then deserialized
//! from that tree by a deserializer that records what does not fit and
//! carries on: an unknown field is skipped (serde tells a deserializer which
//! fields a struct has), a value of the wrong type is recorded and replaced
//! by an empty one of the right type. What cannot be carried past (a missing
//! field, a value a custom type refuses) ends the pass with its location.

use serde::Deserialize;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde_saphyr::{Location, Spanned};
use std::cell::RefCell;
use std::fmt;

/// serde-saphyr's name for the newtype through which `Spanned<T>` asks for
/// its locations, and the key that marks the map it then expects.
const SPANNED_NEWTYPE: &str = "__yaml_spanned";
const SPANNED_MARKER: &str = "__serde_saphyr_private_spanned";

/// One structural problem: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructuralError {
    /// 1-based line (0 when unknown).
    pub line: u64,
    /// 1-based column (0 when unknown).
    pub column: u64,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Reads `source` as a `T`, reporting every unknown field and wrong type.
/// YAML syntax errors and exceeded limits come back as serde-saphyr's error.
pub fn from_str<T: DeserializeOwned + Send>(source: &str) -> Result<T, Structural> {
    // Reading the tree recurses once per nesting level (serde-saphyr's
    // budget caps the depth at 64), and debug builds use large frames: give
    // it a stack of its own rather than depend on the caller's (test
    // threads have 2 MiB).
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("scenario-structure".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, || read(source))
            .map_err(|e| Structural::Thread(e.to_string()))?
            .join()
            .unwrap_or_else(|_| Err(Structural::Thread("the structural pass panicked".into())))
    })
}

/// The stack of the thread that reads a file's structure.
const PARSE_STACK_BYTES: usize = 64 * 1024 * 1024;

fn read<T: DeserializeOwned>(source: &str) -> Result<T, Structural> {
    let root: Node = serde_saphyr::from_str(source).map_err(Structural::Yaml)?;
    let problems = RefCell::new(Vec::new());
    let result = T::deserialize(NodeDe {
        node: &root,
        problems: &problems,
    });
    let mut problems = problems.into_inner();
    match result {
        Ok(value) if problems.is_empty() => Ok(value),
        Ok(_) => Err(Structural::Fields(problems)),
        Err(fatal) => {
            let at = fatal.at.unwrap_or(root.at);
            // A struct given as a scalar is recorded, then ends the pass
            // with a missing field at the same place: report it once.
            if !problems
                .iter()
                .any(|p| p.line == at.line() && p.column == at.column())
            {
                problems.push(problem(at, fatal.message));
            }
            Err(Structural::Fields(problems))
        }
    }
}

/// Why [`from_str`] failed.
#[derive(Debug)]
pub enum Structural {
    /// The text is not YAML, or breaks a limit (depth, aliases, size).
    Yaml(serde_saphyr::Error),
    /// Unknown fields and wrong types, in document order.
    Fields(Vec<StructuralError>),
    /// The pass itself could not run.
    Thread(String),
}

fn problem(at: Location, message: String) -> StructuralError {
    StructuralError {
        line: at.line(),
        column: at.column(),
        message,
    }
}

/// A YAML node and where it is.
#[derive(Debug)]
struct Node {
    at: Location,
    value: Value,
}

#[derive(Debug)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            at: spanned.referenced,
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
                Ok(Value::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
                Ok(Value::UInt(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
                Value::deserialize(d)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<Node, Node>()? {
                    entries.push(entry);
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl Value {
    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Value::Null => Unexpected::Unit,
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::Int(i) => Unexpected::Signed(*i),
            Value::UInt(u) => Unexpected::Unsigned(*u),
            Value::Float(f) => Unexpected::Float(*f),
            Value::Str(s) => Unexpected::Str(s),
            Value::Seq(_) => Unexpected::Seq,
            Value::Map(_) => Unexpected::Map,
        }
    }

    /// A scalar as text (YAML has no separate string type for plain scalars).
    fn as_text(&self) -> Option<String> {
        match self {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::UInt(u) => Some(u.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Str(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// An error that ends the pass; located on its way out.
#[derive(Debug)]
pub struct DeError {
    message: String,
    at: Option<Location>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            at: None,
        }
    }
}

type Problems = RefCell<Vec<StructuralError>>;

/// Deserializes from one node, recording what does not fit.
#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    problems: &'a Problems,
}

impl<'a> NodeDe<'a> {
    fn record(&self, at: Location, message: String) {
        self.problems.borrow_mut().push(problem(at, message));
    }

    fn wrong_type(&self, expected: &dyn de::Expected) {
        let message = de::Error::invalid_type(self.node.value.unexpected(), expected);
        let DeError { message, .. } = message;
        self.record(self.node.at, message);
    }

    /// Gives an error that leaves this node its location.
    fn locate<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|mut e| {
            e.at.get_or_insert(self.node.at);
            e
        })
    }

    fn child(&self, node: &'a Node) -> NodeDe<'a> {
        NodeDe {
            node,
            problems: self.problems,
        }
    }

    fn seq<'de, V: Visitor<'de>>(self, items: &'a [Node], visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(Items {
            items: items.iter(),
            de: self,
        })
    }

    fn map<'de, V: Visitor<'de>>(
        self,
        entries: &'a [(Node, Node)],
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(Entries {
            entries: entries.iter(),
            fields,
            value: None,
            de: self,
        })
    }
}

macro_rules! integer {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let value = match &self.node.value {
                Value::Int(i) => <$ty>::try_from(*i).ok(),
                Value::UInt(u) => <$ty>::try_from(*u).ok(),
                _ => {
                    self.wrong_type(&visitor);
                    return self.locate(visitor.$visit(0));
                }
            };
            match value {
                Some(v) => self.locate(visitor.$visit(v)),
                None => {
                    let e: DeError =
                        de::Error::invalid_value(self.node.value.unexpected(), &visitor);
                    self.record(self.node.at, e.message);
                    self.locate(visitor.$visit(0))
                }
            }
        }
    };
}

impl<'de, 'a> Deserializer<'de> for NodeDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::UInt(u) => visitor.visit_u64(*u),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_str(s),
            Value::Seq(items) => self.seq(items, visitor),
            Value::Map(entries) => self.map(entries, None, visitor),
        };
        self.locate(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Bool(b) => self.locate(visitor.visit_bool(*b)),
            _ => {
                self.wrong_type(&visitor);
                self.locate(visitor.visit_bool(false))
            }
        }
    }

    integer!(deserialize_i8, visit_i8, i8);
    integer!(deserialize_i16, visit_i16, i16);
    integer!(deserialize_i32, visit_i32, i32);
    integer!(deserialize_i64, visit_i64, i64);
    integer!(deserialize_u8, visit_u8, u8);
    integer!(deserialize_u16, visit_u16, u16);
    integer!(deserialize_u32, visit_u32, u32);
    integer!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let value = match &self.node.value {
            Value::Int(i) => *i as f64,
            Value::UInt(u) => *u as f64,
            Value::Float(f) => *f,
            _ => {
                self.wrong_type(&visitor);
                0.0
            }
        };
        self.locate(visitor.visit_f64(value))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value.as_text() {
            Some(text) => self.locate(visitor.visit_str(&text)),
            None => {
                self.wrong_type(&visitor);
                self.locate(visitor.visit_str(""))
            }
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Null => self.locate(visitor.visit_none()),
            _ => self.locate(visitor.visit_some(self)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if !matches!(self.node.value, Value::Null) {
            self.wrong_type(&visitor);
        }
        self.locate(visitor.visit_unit())
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED_NEWTYPE {
            return self.locate(visitor.visit_newtype_struct(SpannedDe(self)));
        }
        self.locate(visitor.visit_newtype_struct(self))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Seq(items) => {
                let r = self.seq(items, visitor);
                self.locate(r)
            }
            _ => {
                self.wrong_type(&visitor);
                let r = self.seq(&[], visitor);
                self.locate(r)
            }
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => {
                let r = self.map(entries, None, visitor);
                self.locate(r)
            }
            _ => {
                self.wrong_type(&visitor);
                let r = self.map(&[], None, visitor);
                self.locate(r)
            }
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Map(entries) => {
                let r = self.map(entries, Some(fields), visitor);
                self.locate(r)
            }
            _ => {
                self.wrong_type(&visitor);
                let r = self.map(&[], Some(fields), visitor);
                self.locate(r)
            }
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(name) if variants.contains(&name.as_str()) => {
                let d: de::value::StrDeserializer<'_, DeError> = name.as_str().into_deserializer();
                self.locate(visitor.visit_enum(d))
            }
            Value::Str(name) => {
                let e: DeError = de::Error::unknown_variant(name, variants);
                self.record(self.node.at, e.message);
                let first = variants.first().copied().unwrap_or_default();
                let d: de::value::StrDeserializer<'_, DeError> = first.into_deserializer();
                self.locate(visitor.visit_enum(d))
            }
            Value::Map(entries) if entries.len() == 1 => {
                let r = visitor.visit_enum(Variant {
                    key: &entries[0].0,
                    value: &entries[0].1,
                    de: self,
                });
                self.locate(r)
            }
            _ => {
                let r = self.deserialize_any(visitor);
                self.locate(r)
            }
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// The elements of a sequence.
struct Items<'a> {
    items: std::slice::Iter<'a, Node>,
    de: NodeDe<'a>,
}

impl<'de, 'a> SeqAccess<'de> for Items<'a> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed.deserialize(self.de.child(node)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a mapping; for a struct, unknown fields are recorded and
/// skipped.
struct Entries<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    fields: Option<&'static [&'static str]>,
    value: Option<&'a Node>,
    de: NodeDe<'a>,
}

impl<'de, 'a> MapAccess<'de> for Entries<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for (key, value) in self.entries.by_ref() {
            if let Some(fields) = self.fields {
                let name = key.value.as_text().unwrap_or_default();
                if !fields.contains(&name.as_str()) {
                    let e: DeError = de::Error::unknown_field(&name, fields);
                    self.de.record(key.at, e.message);
                    continue;
                }
            }
            self.value = Some(value);
            return seed.deserialize(self.de.child(key)).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("a value without its key"))?;
        seed.deserialize(self.de.child(value))
    }
}

/// An externally tagged enum variant: `{variant: value}`.
struct Variant<'a> {
    key: &'a Node,
    value: &'a Node,
    de: NodeDe<'a>,
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = DeError;
    type Variant = NodeDe<'a>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, NodeDe<'a>), DeError> {
        let tag = seed.deserialize(self.de.child(self.key))?;
        Ok((tag, self.de.child(self.value)))
    }
}

impl<'de, 'a> de::VariantAccess<'de> for NodeDe<'a> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_struct("", fields, visitor)
    }
}

/// What `Spanned<T>` expects: a map of a marker, the value and its
/// locations.
struct SpannedDe<'a>(NodeDe<'a>);

impl<'de, 'a> Deserializer<'de> for SpannedDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(SpannedFields {
            de: self.0,
            next: 0,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct SpannedFields<'a> {
    de: NodeDe<'a>,
    next: usize,
}

const SPANNED_KEYS: [&str; 4] = [SPANNED_MARKER, "value", "referenced", "defined"];

impl<'de, 'a> MapAccess<'de> for SpannedFields<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(key) = SPANNED_KEYS.get(self.next) else {
            return Ok(None);
        };
        let d: de::value::StrDeserializer<'_, DeError> = key.into_deserializer();
        seed.deserialize(d).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let index = self.next;
        self.next += 1;
        match index {
            0 => seed.deserialize(().into_deserializer()),
            1 => seed.deserialize(self.de),
            _ => {
                let at = self.de.node.at;
                let fields = [("line", at.line()), ("column", at.column())];
                let d: de::value::MapDeserializer<'_, _, DeError> =
                    de::value::MapDeserializer::new(fields.into_iter());
                seed.deserialize(de::value::MapAccessDeserializer::new(d))
            }
        }
    }
}
