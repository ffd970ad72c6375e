//! Durations: strings with a unit, `"250ms"`, `"5s"`, `"10m"`, `"1h"`, read with humantime.
//!
//! A bare number is refused with a message that says to add a unit: `30` could mean
//! seconds or milliseconds, and guessing wrong is worse than asking. `"0s"` is a valid
//! zero; for timeouts `resolve.rs` turns it into "off".

use std::time::Duration;

use ::config::{Value, ValueKind};

use super::value::{describe, FromValue};

const EXAMPLES: &str = "such as \"250ms\", \"5s\", \"10m\" or \"1h\"";

/// Parses a duration string; the error says what to write instead.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!(
            "empty duration; write a number with a unit, {EXAMPLES}"
        ));
    }
    if text.parse::<f64>().is_ok() {
        return Err(bare_number(text));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?} ({e}); write a number with a unit, {EXAMPLES}")
    })
}

fn bare_number(number: &str) -> String {
    format!(
        "duration {number} has no unit; add one, e.g. \"{number}s\" or \"{number}ms\" \
         (units: ms, s, m, h)"
    )
}

impl FromValue for Duration {
    fn from_value(value: Value) -> Result<Self, String> {
        match &value.kind {
            ValueKind::String(s) => parse_duration(s),
            ValueKind::I64(_)
            | ValueKind::I128(_)
            | ValueKind::U64(_)
            | ValueKind::U128(_)
            | ValueKind::Float(_) => Err(bare_number(&describe(&value))),
            _ => Err(format!(
                "expected a duration string {EXAMPLES}, found {}",
                describe(&value)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load::problems_of;
    use super::*;

    #[test]
    fn bare_integer_in_a_config_names_the_key() {
        let toml = r#"
            [general]
            shutdown_timeout = 30

            [pools.app]
            query_timeout = "30"
            ban_time = "a while"
            servers = [{ host = "db1", port = 5432 }]
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "general.shutdown_timeout: duration 30 has no unit; add one, e.g. \"30s\" or \
                 \"30ms\" (units: ms, s, m, h)",
                "pools.app.query_timeout: duration 30 has no unit; add one, e.g. \"30s\" or \
                 \"30ms\" (units: ms, s, m, h)",
                "pools.app.ban_time: invalid duration \"a while\" (expected number at 0); write \
                 a number with a unit, such as \"250ms\", \"5s\", \"10m\" or \"1h\"",
            ]
        );
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn bare_numbers_ask_for_a_unit() {
        let err = parse_duration("30").unwrap_err();
        assert!(err.contains("has no unit"), "{err}");
        assert!(err.contains("\"30s\""), "{err}");
        assert!(parse_duration("0").unwrap_err().contains("has no unit"));
        let err = Duration::from_value(Value::new(None, 30_i64)).unwrap_err();
        assert_eq!(
            err,
            "duration 30 has no unit; add one, e.g. \"30s\" or \"30ms\" (units: ms, s, m, h)"
        );
    }

    #[test]
    fn garbage_is_explained() {
        let err = parse_duration("soon").unwrap_err();
        assert!(err.starts_with("invalid duration \"soon\""), "{err}");
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(Duration::from_value(Value::new(None, true)).is_err());
    }
}
