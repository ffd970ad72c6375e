//! Comment hints at the start of a query: `/* shard_id: 2 */` or `/* sharding_key: 1234 */`
//! (PgCat's), in the simple and the extended protocol.

use super::extension::ShardSetting;

/// The hint at the start of `sql`, if there is one. A hint with a value it cannot take is an
/// error (routing a query somewhere else than asked would be worse).
pub fn parse_hint(sql: &str) -> Option<Result<ShardSetting, String>> {
    let rest = sql.trim_start().strip_prefix("/*")?;
    let inner = &rest[..rest.find("*/")?];
    let (name, value) = inner.split_once(':')?;
    let name = name.trim();
    let value = value.trim().trim_matches('\'').trim_matches('"');
    if name.eq_ignore_ascii_case("shard_id") {
        Some(
            value
                .parse::<usize>()
                .map(ShardSetting::Index)
                .map_err(|_| format!("invalid shard_id hint {value:?}: expected a shard number")),
        )
    } else if name.eq_ignore_ascii_case("sharding_key") {
        Some(
            value
                .parse::<i64>()
                .map(ShardSetting::Key)
                .map_err(|_| format!("invalid sharding_key hint {value:?}: expected a bigint")),
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hints() {
        assert_eq!(
            parse_hint("/* shard_id: 2 */ SELECT 1"),
            Some(Ok(ShardSetting::Index(2)))
        );
        assert_eq!(
            parse_hint("  /*sharding_key:-77*/SELECT 1"),
            Some(Ok(ShardSetting::Key(-77)))
        );
        assert_eq!(
            parse_hint("/* sharding_key: '1234' */ INSERT INTO t VALUES (1)"),
            Some(Ok(ShardSetting::Key(1234)))
        );
        assert!(matches!(
            parse_hint("/* shard_id: x */ SELECT 1"),
            Some(Err(_))
        ));
    }

    #[test]
    fn ignores_other_comments_and_late_hints() {
        assert_eq!(parse_hint("/* a comment */ SELECT 1"), None);
        assert_eq!(parse_hint("SELECT 1 /* shard_id: 2 */"), None);
        assert_eq!(parse_hint("/* shard_id: 2"), None);
        assert_eq!(parse_hint("-- shard_id: 2\nSELECT 1"), None);
    }
}
