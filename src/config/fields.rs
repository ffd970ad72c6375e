//! The key names a serde struct accepts, read from its derived `Deserialize`.
//!
//! `#[derive(Deserialize)]` hands the list of field names to `deserialize_struct`; a probe
//! deserializer captures it, so the known keys checked in `keys.rs` always match the structs
//! in `schema.rs`.

use serde::de::{self, Deserialize, Deserializer, Visitor};

/// The field names of struct `T` (empty if `T` is not a struct).
pub(super) fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    // The probe always fails after capturing the names; the error itself carries nothing.
    let _ = T::deserialize(Probe(&mut names));
    names
}

struct Probe<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        alpha: u32,
        beta: String,
    }

    #[test]
    fn captures_struct_fields() {
        assert_eq!(field_names::<Sample>(), &["alpha", "beta"]);
        assert!(field_names::<u32>().is_empty());
    }
}
