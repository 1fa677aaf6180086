//! A serde `Serializer` that builds a checked [`CanonicalValue`].
//!
//! Own serializer rather than `serde_json::to_value`: that one turns NaN into `null`,
//! lets a later duplicate key win, and accepts any float, all silently.

use std::collections::BTreeMap;

use serde::ser::{self, Serialize};
use unicode_normalization::is_nfc;

use super::key::KeySerializer;
use super::{CanonicalError, CanonicalValue, JsonPath, MAX_DEPTH, MAX_SAFE_INTEGER, ObjectKey};

type Result<T> = std::result::Result<T, CanonicalError>;

/// Serializes one value found `depth` containers below the root.
#[derive(Clone, Copy)]
pub(super) struct ValueSerializer {
    depth: usize,
}

impl ValueSerializer {
    pub(super) fn new() -> Self {
        Self { depth: 0 }
    }

    /// A serializer for the children of a container opened at this level.
    fn enter(self) -> Result<Self> {
        if self.depth >= MAX_DEPTH {
            return Err(CanonicalError::TooDeep {
                path: JsonPath::root(),
                limit: MAX_DEPTH,
            });
        }
        Ok(Self {
            depth: self.depth + 1,
        })
    }
}

fn integer(n: i128) -> Result<CanonicalValue> {
    match i64::try_from(n) {
        Ok(n) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&n) => {
            Ok(CanonicalValue::Integer(n))
        }
        _ => Err(CanonicalError::IntegerOutOfRange {
            path: JsonPath::root(),
        }),
    }
}

fn string(s: &str) -> Result<CanonicalValue> {
    if !is_nfc(s) {
        return Err(CanonicalError::NotNfcString {
            path: JsonPath::root(),
        });
    }
    Ok(CanonicalValue::String(s.to_owned()))
}

/// Wraps `value` as `{variant: value}`, serde's externally tagged enum form.
fn tagged(variant: &str, value: CanonicalValue) -> Result<CanonicalValue> {
    let mut object = Object::default();
    object.insert(variant.to_owned(), Ok(value))?;
    Ok(CanonicalValue::Object(object.entries))
}

impl ser::Serializer for ValueSerializer {
    type Ok = CanonicalValue;
    type Error = CanonicalError;
    type SerializeSeq = Array;
    type SerializeTuple = Array;
    type SerializeTupleStruct = Array;
    type SerializeTupleVariant = Array;
    type SerializeMap = Map;
    type SerializeStruct = Map;
    type SerializeStructVariant = Map;

    fn serialize_bool(self, v: bool) -> Result<CanonicalValue> {
        Ok(CanonicalValue::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<CanonicalValue> {
        integer(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<CanonicalValue> {
        integer(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<CanonicalValue> {
        integer(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<CanonicalValue> {
        integer(v.into())
    }
    fn serialize_i128(self, v: i128) -> Result<CanonicalValue> {
        integer(v)
    }
    fn serialize_u8(self, v: u8) -> Result<CanonicalValue> {
        integer(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<CanonicalValue> {
        integer(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<CanonicalValue> {
        integer(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<CanonicalValue> {
        integer(v.into())
    }
    fn serialize_u128(self, v: u128) -> Result<CanonicalValue> {
        integer(i128::try_from(v).unwrap_or(i128::MAX))
    }
    fn serialize_f32(self, _v: f32) -> Result<CanonicalValue> {
        Err(CanonicalError::Float {
            path: JsonPath::root(),
        })
    }
    fn serialize_f64(self, _v: f64) -> Result<CanonicalValue> {
        Err(CanonicalError::Float {
            path: JsonPath::root(),
        })
    }
    fn serialize_char(self, v: char) -> Result<CanonicalValue> {
        string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<CanonicalValue> {
        string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<CanonicalValue> {
        // As serde_json does: an array of byte values.
        self.enter()?;
        Ok(CanonicalValue::Array(
            v.iter()
                .map(|&b| CanonicalValue::Integer(b.into()))
                .collect(),
        ))
    }
    fn serialize_none(self) -> Result<CanonicalValue> {
        Ok(CanonicalValue::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<CanonicalValue> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<CanonicalValue> {
        Ok(CanonicalValue::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<CanonicalValue> {
        Ok(CanonicalValue::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<CanonicalValue> {
        string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<CanonicalValue> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<CanonicalValue> {
        let inner = value
            .serialize(self.enter()?)
            .map_err(|e| e.under_key(variant))?;
        tagged(variant, inner)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Array> {
        Ok(Array::new(self.enter()?, len, None))
    }
    fn serialize_tuple(self, len: usize) -> Result<Array> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Array> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Array> {
        let inner = self.enter().map_err(|e| e.under_key(variant))?;
        let children = inner.enter().map_err(|e| e.under_key(variant))?;
        Ok(Array::new(children, Some(len), Some(variant)))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Map> {
        Ok(Map::new(self.enter()?, None))
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Map> {
        Ok(Map::new(self.enter()?, None))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Map> {
        let inner = self.enter().map_err(|e| e.under_key(variant))?;
        let children = inner.enter().map_err(|e| e.under_key(variant))?;
        Ok(Map::new(children, Some(variant)))
    }
}

/// Collects array elements; `variant` wraps the array as `{variant: [...]}`.
pub(super) struct Array {
    children: ValueSerializer,
    items: Vec<CanonicalValue>,
    variant: Option<&'static str>,
}

impl Array {
    fn new(children: ValueSerializer, len: Option<usize>, variant: Option<&'static str>) -> Self {
        // A hint from the value being serialized, so not trusted for large allocations.
        let capacity = len.unwrap_or(0).min(1024);
        Self {
            children,
            items: Vec::with_capacity(capacity),
            variant,
        }
    }

    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let index = self.items.len();
        let item = value.serialize(self.children).map_err(|e| {
            let e = e.under_index(index);
            match self.variant {
                Some(v) => e.under_key(v),
                None => e,
            }
        })?;
        self.items.push(item);
        Ok(())
    }

    fn finish(self) -> Result<CanonicalValue> {
        let array = CanonicalValue::Array(self.items);
        match self.variant {
            Some(variant) => tagged(variant, array),
            None => Ok(array),
        }
    }
}

impl ser::SerializeSeq for Array {
    type Ok = CanonicalValue;
    type Error = CanonicalError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<CanonicalValue> {
        self.finish()
    }
}

impl ser::SerializeTuple for Array {
    type Ok = CanonicalValue;
    type Error = CanonicalError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<CanonicalValue> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Array {
    type Ok = CanonicalValue;
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<CanonicalValue> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Array {
    type Ok = CanonicalValue;
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<CanonicalValue> {
        self.finish()
    }
}

/// Object entries, refusing a second value for a key already present.
#[derive(Default)]
struct Object {
    entries: BTreeMap<ObjectKey, CanonicalValue>,
}

impl Object {
    /// Checks `key`, then inserts the value (or the error met serializing it) under it.
    fn insert(&mut self, key: String, value: Result<CanonicalValue>) -> Result<()> {
        if !is_nfc(&key) {
            return Err(CanonicalError::NotNfcKey {
                path: JsonPath::root().under_key(&key),
            });
        }
        let value = value.map_err(|e| e.under_key(&key))?;
        let key = ObjectKey::new(key);
        if self.entries.contains_key(&key) {
            return Err(CanonicalError::DuplicateKey {
                path: JsonPath::root().under_key(key.as_str()),
            });
        }
        self.entries.insert(key, value);
        Ok(())
    }
}

/// Collects map or struct entries; `variant` wraps the object as `{variant: {...}}`.
pub(super) struct Map {
    children: ValueSerializer,
    object: Object,
    pending_key: Option<String>,
    variant: Option<&'static str>,
}

impl Map {
    fn new(children: ValueSerializer, variant: Option<&'static str>) -> Self {
        Self {
            children,
            object: Object::default(),
            pending_key: None,
            variant,
        }
    }

    fn entry<T: Serialize + ?Sized>(&mut self, key: String, value: &T) -> Result<()> {
        let value = value.serialize(self.children);
        self.object
            .insert(key, value)
            .map_err(|e| match self.variant {
                Some(v) => e.under_key(v),
                None => e,
            })
    }

    fn finish(self) -> Result<CanonicalValue> {
        let object = CanonicalValue::Object(self.object.entries);
        match self.variant {
            Some(variant) => tagged(variant, object),
            None => Ok(object),
        }
    }
}

impl ser::SerializeMap for Map {
    type Ok = CanonicalValue;
    type Error = CanonicalError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.pending_key = Some(key.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| CanonicalError::Serialize {
                path: JsonPath::root(),
                reason: "map value serialized before its key".to_owned(),
            })?;
        self.entry(key, value)
    }
    fn end(self) -> Result<CanonicalValue> {
        self.finish()
    }
}

impl ser::SerializeStruct for Map {
    type Ok = CanonicalValue;
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.entry(key.to_owned(), value)
    }
    fn end(self) -> Result<CanonicalValue> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Map {
    type Ok = CanonicalValue;
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.entry(key.to_owned(), value)
    }
    fn end(self) -> Result<CanonicalValue> {
        self.finish()
    }
}
