//! Leaf values: how one config value becomes a typed setting, or the reason it cannot.
//!
//! Every leaf in `schema.rs` is a [`Field`]: deserializing it never fails, it keeps either
//! the typed value or a reason. That way one bad value does not hide the others, and the
//! reason is attached to its key path later, in `resolve.rs`.
//!
//! Conversions are strict about TOML types (a `pool_size = 2.5` is an error, not 3), but
//! accept strings for numbers and booleans, since environment overrides are always strings.

use std::net::SocketAddr;

use ::config::{Value, ValueKind};
use serde::{Deserialize, Deserializer};

/// A leaf value as written: the typed value, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Field<T>(pub(super) Result<T, String>);

impl<'de, T: FromValue> Deserialize<'de> for Field<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(Field(T::from_value(value)))
    }
}

/// Conversion of one config value into a setting's type.
pub(super) trait FromValue: Sized {
    /// The typed value, or a reason that says what was expected and what was found.
    fn from_value(value: Value) -> Result<Self, String>;
}

/// How a value shows in a message: strings quoted, numbers as written, containers by kind.
pub(super) fn describe(value: &Value) -> String {
    match &value.kind {
        ValueKind::Nil => "nothing".to_string(),
        ValueKind::Boolean(b) => b.to_string(),
        ValueKind::I64(n) => n.to_string(),
        ValueKind::I128(n) => n.to_string(),
        ValueKind::U64(n) => n.to_string(),
        ValueKind::U128(n) => n.to_string(),
        ValueKind::Float(n) => n.to_string(),
        ValueKind::String(s) => format!("{s:?}"),
        ValueKind::Table(_) => "a table".to_string(),
        ValueKind::Array(_) => "an array".to_string(),
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, String> {
        string(value, describe)
    }
}

/// A string that holds a secret (a password): a value of the wrong type is reported by its
/// kind, never quoted, so a mistyped password does not end up in a log or a console reply.
#[derive(Clone, PartialEq)]
pub(super) struct SecretText(pub(super) String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

impl AsRef<str> for SecretText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromValue for SecretText {
    fn from_value(value: Value) -> Result<Self, String> {
        string(value, kind).map(SecretText)
    }
}

/// A string value; anything else is refused, shown in the reason by `show`.
fn string(value: Value, show: fn(&Value) -> String) -> Result<String, String> {
    match value.kind {
        ValueKind::String(s) => Ok(s),
        ValueKind::Table(_) | ValueKind::Array(_) | ValueKind::Nil => {
            Err(format!("expected a string, found {}", show(&value)))
        }
        _ => Err(format!(
            "expected a string, found {}; put the value in quotes",
            show(&value)
        )),
    }
}

/// A value's type without the value itself (for secrets).
fn kind(value: &Value) -> String {
    match &value.kind {
        ValueKind::Boolean(_) => "a boolean".to_string(),
        ValueKind::Float(_) => "a floating-point number".to_string(),
        ValueKind::String(_) => "a string".to_string(),
        ValueKind::I64(_) | ValueKind::I128(_) | ValueKind::U64(_) | ValueKind::U128(_) => {
            "an integer".to_string()
        }
        ValueKind::Nil | ValueKind::Table(_) | ValueKind::Array(_) => describe(value),
    }
}

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, String> {
        match &value.kind {
            ValueKind::Boolean(b) => Ok(*b),
            ValueKind::String(s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
            ValueKind::String(s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(format!(
                "expected true or false, found {}",
                describe(&value)
            )),
        }
    }
}

macro_rules! integer_from_value {
    ($($ty:ty),+) => {$(
        impl FromValue for $ty {
            fn from_value(value: Value) -> Result<Self, String> {
                let wrong = || format!("expected an integer, found {}", describe(&value));
                let n: i128 = match &value.kind {
                    ValueKind::I64(n) => i128::from(*n),
                    ValueKind::I128(n) => *n,
                    ValueKind::U64(n) => i128::from(*n),
                    ValueKind::U128(n) => i128::try_from(*n).unwrap_or(i128::MAX),
                    ValueKind::String(s) => s.trim().parse::<i128>().map_err(|_| wrong())?,
                    _ => return Err(wrong()),
                };
                <$ty>::try_from(n).map_err(|_| {
                    if n < 0 {
                        format!("must not be negative, found {n}")
                    } else {
                        format!("must be at most {}, found {n}", <$ty>::MAX)
                    }
                })
            }
        }
    )+};
}

integer_from_value!(u16, u32, usize);

/// A list of strings: a TOML array, or (for environment overrides) one comma-separated string.
impl FromValue for Vec<String> {
    fn from_value(value: Value) -> Result<Self, String> {
        match value.kind {
            ValueKind::Array(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item.kind {
                    ValueKind::String(s) => Ok(s),
                    _ => Err(format!(
                        "expected an array of strings, but element {i} is {}",
                        describe(&item)
                    )),
                })
                .collect(),
            ValueKind::String(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()),
            _ => Err(format!(
                "expected an array of strings such as [\"admin\"], found {}",
                describe(&value)
            )),
        }
    }
}

/// An `IP:port` address; host names are not resolved.
impl FromValue for SocketAddr {
    fn from_value(value: Value) -> Result<Self, String> {
        let text = String::from_value(value)?;
        text.trim().parse().map_err(|_| {
            format!(
                "expected IP:port such as \"127.0.0.1:6432\" or \"[::1]:6432\", found {text:?} \
                 (host names are not accepted here)"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(kind: impl Into<ValueKind>) -> Value {
        Value::new(None, kind)
    }

    #[test]
    fn integers_are_strict_about_type_and_range() {
        assert_eq!(u16::from_value(v(5432_i64)), Ok(5432));
        assert_eq!(usize::from_value(v("17")), Ok(17));
        assert_eq!(
            u16::from_value(v(70000_i64)),
            Err("must be at most 65535, found 70000".to_string())
        );
        assert_eq!(
            usize::from_value(v(2.5)),
            Err("expected an integer, found 2.5".to_string())
        );
        assert_eq!(
            u32::from_value(v("abc")),
            Err("expected an integer, found \"abc\"".to_string())
        );
        assert!(usize::from_value(v(-1_i64)).is_err());
        assert!(usize::from_value(v(true)).is_err());
    }

    #[test]
    fn booleans_accept_env_strings() {
        assert_eq!(bool::from_value(v(true)), Ok(true));
        assert_eq!(bool::from_value(v("FALSE")), Ok(false));
        assert!(bool::from_value(v(1_i64)).is_err());
        assert!(bool::from_value(v("yes")).is_err());
    }

    #[test]
    fn strings_reject_numbers() {
        assert_eq!(String::from_value(v("x")), Ok("x".to_string()));
        assert!(String::from_value(v(12_i64))
            .unwrap_err()
            .contains("put the value in quotes"));
        assert_eq!(
            String::from_value(v(vec![v("a")])),
            Err("expected a string, found an array".to_string())
        );
    }

    #[test]
    fn string_lists_from_arrays_or_comma_strings() {
        let arr = v(vec![v("a"), v("b")]);
        assert_eq!(
            Vec::<String>::from_value(arr),
            Ok(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            Vec::<String>::from_value(v("admin, ops,")),
            Ok(vec!["admin".to_string(), "ops".to_string()])
        );
        assert_eq!(Vec::<String>::from_value(v("")), Ok(vec![]));
        assert!(Vec::<String>::from_value(v(vec![v(1_i64)])).is_err());
    }

    #[test]
    fn socket_addrs() {
        assert_eq!(
            SocketAddr::from_value(v("0.0.0.0:6432")),
            Ok(SocketAddr::from(([0, 0, 0, 0], 6432)))
        );
        assert!(SocketAddr::from_value(v("[::1]:1")).is_ok());
        assert!(SocketAddr::from_value(v("localhost:6432"))
            .unwrap_err()
            .contains("IP:port"));
        assert!(SocketAddr::from_value(v("127.0.0.1")).is_err());
    }
}
