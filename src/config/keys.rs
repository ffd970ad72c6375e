//! Key check: every unknown key and every misplaced table, with its full path.
//!
//! Runs over the merged value tree (file plus environment) before serde sees it. Known keys
//! come from the structs in `schema.rs` (see `fields.rs`). Unknown keys are reported and
//! dropped, and containers of the wrong kind (`servers = "x"`) are reported and dropped or
//! emptied, so that deserializing the cleaned tree cannot fail and the remaining values are
//! still checked. Array elements are never removed, so indexes in later messages stay right.

use ::config::{Map, Value, ValueKind};

use super::error::Problems;
use super::fields::field_names;
use super::path;
use super::schema::{
    RawConfig, RawGeneral, RawPool, RawPoolSettings, RawServer, RawShard, RawUser,
};
use super::value::describe;

/// Keys that belong to a pool but may not appear in `[defaults]`, with the reason.
const NOT_IN_DEFAULTS: &[(&str, &str)] = &[
    (
        "database",
        "not allowed in [defaults]; a pool's database defaults to the pool's name, \
         set `database` in [pools.NAME]",
    ),
    (
        "servers",
        "not allowed in [defaults]; list servers in each [pools.NAME]",
    ),
    (
        "shards",
        "not allowed in [defaults]; define [[pools.NAME.shards]] per pool",
    ),
];

/// Checks the whole tree; returns it without the keys that were reported.
pub(super) fn check(root: Map<String, Value>, problems: &mut Problems) -> Map<String, Value> {
    let known = field_names::<RawConfig>();
    keep_known(
        root,
        "",
        known,
        &[],
        problems,
        &mut |key, value, path, problems| match key {
            "general" => leaf_table(
                value,
                path,
                "a [general] table",
                field_names::<RawGeneral>(),
                problems,
            ),
            "users" => named_tables(
                value,
                path,
                "[users.NAME] tables",
                problems,
                &mut |v, p, pr| {
                    leaf_table(
                        v,
                        p,
                        "a table of user settings",
                        field_names::<RawUser>(),
                        pr,
                    )
                },
            ),
            "defaults" => as_table(value, path, "a [defaults] table", problems).map(|map| {
                let known = field_names::<RawPoolSettings>();
                let kept = keep_known(map, path, known, NOT_IN_DEFAULTS, problems, &mut leaf);
                table_value(kept)
            }),
            "pools" => named_tables(value, path, "[pools.NAME] tables", problems, &mut pool),
            _ => Some(value),
        },
    )
}

/// A `[pools.NAME]` table.
fn pool(value: Value, path: &str, problems: &mut Problems) -> Option<Value> {
    let map = as_table(value, path, "a table of pool settings", problems)?;
    let known = field_names::<RawPool>();
    let kept = keep_known(
        map,
        path,
        known,
        &[],
        problems,
        &mut |key, value, path, problems| match key {
            "servers" => servers(value, path, problems),
            "shards" => array_of_tables(
                value,
                path,
                "an array of [[shards]] tables",
                problems,
                &mut |v, p, pr| {
                    let map = as_table(v, p, "a shard table", pr).unwrap_or_default();
                    let known = field_names::<RawShard>();
                    let kept =
                        keep_known(map, p, known, &[], pr, &mut |key, value, path, problems| {
                            if key == "servers" {
                                servers(value, path, problems)
                            } else {
                                Some(value)
                            }
                        });
                    Some(table_value(kept))
                },
            ),
            _ => Some(value),
        },
    );
    Some(table_value(kept))
}

/// A `servers = [ { host, port, role }, ... ]` array.
fn servers(value: Value, path: &str, problems: &mut Problems) -> Option<Value> {
    array_of_tables(
        value,
        path,
        "an array of servers like [{ host = \"127.0.0.1\", port = 5432 }]",
        problems,
        &mut |v, p, pr| {
            let map = as_table(
                v,
                p,
                "a server table like { host = \"127.0.0.1\", port = 5432 }",
                pr,
            )
            .unwrap_or_default();
            let kept = keep_known(map, p, field_names::<RawServer>(), &[], pr, &mut leaf);
            Some(table_value(kept))
        },
    )
}

type Child<'a> = dyn FnMut(&str, Value, &str, &mut Problems) -> Option<Value> + 'a;

/// Keeps a value as it is (a leaf: its type is checked later).
fn leaf(_key: &str, value: Value, _path: &str, _problems: &mut Problems) -> Option<Value> {
    Some(value)
}

/// A table whose values are all leaves.
fn leaf_table(
    value: Value,
    path: &str,
    what: &str,
    known: &[&str],
    problems: &mut Problems,
) -> Option<Value> {
    let map = as_table(value, path, what, problems)?;
    Some(table_value(keep_known(
        map,
        path,
        known,
        &[],
        problems,
        &mut leaf,
    )))
}

/// A table of tables keyed by name (`[pools.NAME]`, `[users.NAME]`).
fn named_tables(
    value: Value,
    path: &str,
    what: &str,
    problems: &mut Problems,
    each: &mut dyn FnMut(Value, &str, &mut Problems) -> Option<Value>,
) -> Option<Value> {
    let map = as_table(value, path, what, problems)?;
    let mut out = Map::new();
    for (name, value) in sorted(map) {
        if let Some(value) = each(value, &path::join(path, &name), problems) {
            out.insert(name, value);
        }
    }
    Some(table_value(out))
}

/// An array whose elements are checked by `each`; elements stay in place.
fn array_of_tables(
    value: Value,
    path: &str,
    what: &str,
    problems: &mut Problems,
    each: &mut dyn FnMut(Value, &str, &mut Problems) -> Option<Value>,
) -> Option<Value> {
    match value.kind {
        ValueKind::Array(items) => {
            let items: Vec<Value> = items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    each(item, &path::index(path, i), problems)
                        .unwrap_or_else(|| table_value(Map::new()))
                })
                .collect();
            Some(Value::new(None, items))
        }
        _ => {
            problems.push(path, format!("expected {what}, found {}", describe(&value)));
            None
        }
    }
}

/// Keeps the known keys of `map`; reports the others (with a reason from `misplaced` if
/// listed there) and passes each known one through `child`.
fn keep_known(
    map: Map<String, Value>,
    path: &str,
    known: &[&str],
    misplaced: &[(&str, &str)],
    problems: &mut Problems,
    child: &mut Child<'_>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in sorted(map) {
        let key_path = path::join(path, &key);
        if known.contains(&key.as_str()) {
            if let Some(value) = child(&key, value, &key_path, problems) {
                out.insert(key, value);
            }
        } else if let Some((_, reason)) = misplaced.iter().find(|(k, _)| *k == key) {
            problems.push(key_path, *reason);
        } else {
            problems.push(key_path, unknown_key(&key, known));
        }
    }
    out
}

/// "unknown key", with the nearest known key when one is close.
fn unknown_key(key: &str, known: &[&str]) -> String {
    let nearest = known
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 2 && *d < k.len())
        .min();
    match nearest {
        Some((_, k)) => format!("unknown key (did you mean `{k}`?)"),
        None => "unknown key".to_string(),
    }
}

/// Levenshtein distance, for suggestions.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

fn as_table(
    value: Value,
    path: &str,
    what: &str,
    problems: &mut Problems,
) -> Option<Map<String, Value>> {
    match value.kind {
        ValueKind::Table(map) => Some(map),
        _ => {
            let key = if path.is_empty() { "(top level)" } else { path };
            problems.push(key, format!("expected {what}, found {}", describe(&value)));
            None
        }
    }
}

fn table_value(map: Map<String, Value>) -> Value {
    Value::new(None, map)
}

/// Entries in key order, so problems come out in a stable order.
fn sorted(map: Map<String, Value>) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

#[cfg(test)]
mod tests {
    use super::super::load::problems_of;
    use super::*;

    const APP: &str = r#"
        [pools.app]
        servers = [{ host = "db1", port = 5432 }]
    "#;

    #[test]
    fn unknown_key_at_top_level() {
        let toml = format!("colour = \"blue\"\n{APP}");
        assert_eq!(problems_of(&toml), vec!["colour: unknown key"]);
    }

    #[test]
    fn unknown_key_in_general() {
        let toml = format!("[general]\nlisten_port = 6432\n{APP}");
        assert_eq!(problems_of(&toml), vec!["general.listen_port: unknown key"]);
    }

    #[test]
    fn unknown_key_in_a_pool() {
        let toml = format!("{APP}\npool_sise = 5\n");
        assert_eq!(
            problems_of(&toml),
            vec!["pools.app.pool_sise: unknown key (did you mean `pool_size`?)"]
        );
    }

    #[test]
    fn unknown_key_in_a_server_table() {
        let toml = r#"
            [pools.app]
            servers = [
              { host = "db1", port = 5432 },
              { host = "db2", port = 5432, weight = 2 },
            ]
        "#;
        assert_eq!(
            problems_of(toml),
            vec!["pools.app.servers[1].weight: unknown key"]
        );
    }

    #[test]
    fn unknown_keys_in_users_defaults_and_shards() {
        let toml = r#"
            [users.app]
            pasword = "x"

            [defaults]
            pool_size = 5
            servers = []
            database = "x"
            colour = 1

            [[pools.orders.shards]]
            databse = "o0"
            servers = [{ host = "db1", port = 5432, rol = "replica" }]
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "defaults.colour: unknown key",
                "defaults.database: not allowed in [defaults]; a pool's database defaults to \
                 the pool's name, set `database` in [pools.NAME]",
                "defaults.servers: not allowed in [defaults]; list servers in each [pools.NAME]",
                "pools.orders.shards[0].databse: unknown key (did you mean `database`?)",
                "pools.orders.shards[0].servers[0].rol: unknown key (did you mean `role`?)",
                "users.app.pasword: unknown key (did you mean `password`?)",
            ]
        );
    }

    #[test]
    fn quoted_names_in_paths() {
        let toml = r#"
            [pools."my.db"]
            servers = [{ host = "db1", port = 5432 }]
            extra = 1
        "#;
        assert_eq!(
            problems_of(toml),
            vec!["pools.\"my.db\".extra: unknown key"]
        );
    }

    #[test]
    fn misplaced_tables_are_reported_once() {
        let toml = r#"
            general = "fast"
            users = 3

            [pools.a]
            servers = "db1:5432"

            [pools.b]
            servers = [ "db1:5432" ]

            [pools.c]
            shards = { servers = [] }
        "#;
        assert_eq!(
            problems_of(toml),
            vec![
                "general: expected a [general] table, found \"fast\"",
                "pools.a.servers: expected an array of servers like \
                 [{ host = \"127.0.0.1\", port = 5432 }], found \"db1:5432\"",
                "pools.b.servers[0]: expected a server table like \
                 { host = \"127.0.0.1\", port = 5432 }, found \"db1:5432\"",
                "pools.c.shards: expected an array of [[shards]] tables, found a table",
                "users: expected [users.NAME] tables, found 3",
            ]
        );
    }

    #[test]
    fn suggestions_only_for_near_misses() {
        assert_eq!(distance("pool_sise", "pool_size"), 1);
        assert_eq!(
            unknown_key("pool_sise", &["pool_size", "pool_mode"]),
            "unknown key (did you mean `pool_size`?)"
        );
        assert_eq!(unknown_key("colour", &["pool_size"]), "unknown key");
        assert_eq!(unknown_key("x", &["y"]), "unknown key");
    }
}
