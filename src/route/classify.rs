//! Read or write? Classifies SQL with PostgreSQL's own grammar (libpg_query via the `pg_query`
//! crate), so what counts as a read is what PostgreSQL would parse, not a guess from keywords.
//!
//! A statement is a read when it cannot change data: a plain SELECT (no FOR UPDATE/SHARE, no
//! INTO, no data-modifying CTE) calling only functions known to be read-only, SHOW, EXPLAIN
//! without ANALYZE, COPY … TO, cursors, and `BEGIN READ ONLY`. Everything else, including SQL
//! that does not parse, is a write: sending a read to the primary is slower, sending a write to
//! a replica fails.

use std::collections::HashMap;

use pg_query::protobuf::TransactionStmtKind;
use pg_query::NodeEnum;

/// What a statement (or a whole multi-statement query) needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Built-in functions that never write (schema `pg_catalog` implied). Anything else called in
/// a SELECT makes it a write, because a user function may write.
const READ_ONLY_FUNCTIONS: &[&str] = &[
    "abs",
    "age",
    "array_agg",
    "array_length",
    "array_position",
    "array_to_string",
    "avg",
    "bool_and",
    "bool_or",
    "btrim",
    "cardinality",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "clock_timestamp",
    "concat",
    "concat_ws",
    "count",
    "cume_dist",
    "current_database",
    "current_schema",
    "current_setting",
    "date_part",
    "date_trunc",
    "decode",
    "dense_rank",
    "encode",
    "every",
    "exp",
    "extract",
    "first_value",
    "floor",
    "format",
    "format_type",
    "gen_random_uuid",
    "generate_series",
    "generate_subscripts",
    "has_table_privilege",
    "inet_client_addr",
    "inet_server_addr",
    "inet_server_port",
    "initcap",
    "json_agg",
    "json_array_length",
    "json_build_array",
    "json_build_object",
    "json_object_agg",
    "jsonb_agg",
    "jsonb_array_length",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_object_agg",
    "jsonb_set",
    "lag",
    "last_value",
    "lead",
    "left",
    "length",
    "ln",
    "log",
    "lower",
    "lpad",
    "ltrim",
    "max",
    "md5",
    "min",
    "mod",
    "now",
    "nth_value",
    "ntile",
    "octet_length",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "pg_backend_pid",
    "pg_database_size",
    "pg_is_in_recovery",
    "pg_last_wal_receive_lsn",
    "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp",
    "pg_postmaster_start_time",
    "pg_relation_size",
    "pg_size_pretty",
    "pg_sleep",
    "pg_table_size",
    "pg_total_relation_size",
    "pg_typeof",
    "position",
    "power",
    "random",
    "rank",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_number",
    "row_to_json",
    "rpad",
    "rtrim",
    "sha256",
    "sign",
    "split_part",
    "sqrt",
    "statement_timestamp",
    "stddev",
    "string_agg",
    "string_to_array",
    "strpos",
    "substr",
    "substring",
    "sum",
    "timeofday",
    "to_char",
    "to_date",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_timestamp",
    "transaction_timestamp",
    "trim",
    "trunc",
    "unnest",
    "upper",
    "variance",
    "version",
];

fn is_read_only_function(name: &str) -> bool {
    let name = name.strip_prefix("pg_catalog.").unwrap_or(name);
    READ_ONLY_FUNCTIONS.binary_search(&name).is_ok()
}

/// Classifies one query text (which may hold several statements: any write makes it a write).
pub fn classify(sql: &str) -> Access {
    let Ok(parsed) = pg_query::parse(sql, 0) else {
        return Access::Write;
    };
    let mut copies = false;
    for raw in &parsed.protobuf.stmts {
        let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
            continue;
        };
        let read = match node {
            NodeEnum::SelectStmt(s) => s.locking_clause.is_empty() && s.into_clause.is_none(),
            NodeEnum::TransactionStmt(t) => match TransactionStmtKind::try_from(t.kind) {
                Ok(TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart) => {
                    begins_read_only(&t.options)
                }
                // COMMIT, ROLLBACK, SAVEPOINT… carry no data of their own.
                _ => true,
            },
            NodeEnum::ExplainStmt(e) => !has_option(&e.options, "analyze"),
            NodeEnum::CopyStmt(c) => {
                copies = true;
                !c.is_from
            }
            NodeEnum::VariableShowStmt(_)
            | NodeEnum::VariableSetStmt(_)
            | NodeEnum::DeclareCursorStmt(_)
            | NodeEnum::FetchStmt(_)
            | NodeEnum::ClosePortalStmt(_)
            | NodeEnum::DeallocateStmt(_)
            | NodeEnum::DiscardStmt(_) => true,
            _ => false,
        };
        if !read {
            return Access::Write;
        }
    }
    // COPY … TO names its table in the same way a write would; it was judged above.
    if !copies && (!parsed.dml_tables().is_empty() || !parsed.ddl_tables().is_empty()) {
        return Access::Write; // e.g. WITH x AS (DELETE …) SELECT …
    }
    if parsed.functions().iter().any(|f| !is_read_only_function(f)) {
        return Access::Write;
    }
    Access::Read
}

fn def_name_is(node: &pg_query::protobuf::Node, name: &str) -> Option<bool> {
    match node.node.as_ref()? {
        NodeEnum::DefElem(d) if d.defname == name => Some(true),
        _ => None,
    }
}

fn has_option(options: &[pg_query::protobuf::Node], name: &str) -> bool {
    options.iter().any(|o| def_name_is(o, name).is_some())
}

/// `BEGIN READ ONLY` / `START TRANSACTION READ ONLY`: option transaction_read_only = true.
fn begins_read_only(options: &[pg_query::protobuf::Node]) -> bool {
    options.iter().any(|o| match o.node.as_ref() {
        Some(NodeEnum::DefElem(d)) if d.defname == "transaction_read_only" => {
            match d.arg.as_ref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::AConst(c)) => matches!(
                    c.val,
                    Some(pg_query::protobuf::a_const::Val::Ival(ref i)) if i.ival != 0
                ),
                _ => false,
            }
        }
        _ => false,
    })
}

/// A bounded per-thread memo of classifications by query text: applications send the same
/// statements over and over, so the parser runs once per distinct text.
#[derive(Debug, Default)]
pub struct ClassifyCache {
    map: HashMap<Box<str>, Access, ahash::RandomState>,
}

/// Distinct texts kept before the memo starts over.
const CACHE_LIMIT: usize = 10_000;

impl ClassifyCache {
    pub fn classify(&mut self, sql: &str) -> Access {
        if let Some(a) = self.map.get(sql) {
            return *a;
        }
        let access = classify(sql);
        if self.map.len() >= CACHE_LIMIT {
            self.map.clear();
        }
        self.map.insert(sql.into(), access);
        access
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_function_list_is_sorted_for_binary_search() {
        assert!(READ_ONLY_FUNCTIONS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn reads() {
        for sql in [
            "SELECT 1",
            "select abalance from pgbench_accounts where aid = $1",
            "SELECT count(*), max(v) FROM t JOIN u USING (id) WHERE v > now() - interval '1 day'",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "SELECT pg_catalog.lower('A')",
            "SHOW search_path",
            "SET application_name = 'x'",
            "EXPLAIN SELECT * FROM t",
            "COPY t TO STDOUT",
            "BEGIN READ ONLY",
            "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            "COMMIT",
            "SELECT 1; SELECT 2",
            "SELECT pg_is_in_recovery()",
        ] {
            assert_eq!(classify(sql), Access::Read, "{sql}");
        }
    }

    #[test]
    fn writes() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET v = 1",
            "DELETE FROM t",
            "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE",
            "CREATE TABLE t (a int)",
            "DROP TABLE t",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR SHARE",
            "SELECT * INTO new_t FROM t",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "SELECT nextval('s')",
            "SELECT my_function(1)",
            "SELECT pg_advisory_lock(1)",
            "EXPLAIN ANALYZE DELETE FROM t",
            "COPY t FROM STDIN",
            "BEGIN",
            "START TRANSACTION",
            "BEGIN READ WRITE",
            "SELECT 1; UPDATE t SET v = 2",
            "VACUUM t",
            "CALL p()",
            "DO $$ BEGIN END $$",
            "LOCK TABLE t",
            "this is not sql",
        ] {
            assert_eq!(classify(sql), Access::Write, "{sql}");
        }
    }

    #[test]
    fn the_cache_answers_like_the_parser() {
        let mut c = ClassifyCache::default();
        assert_eq!(c.classify("SELECT 1"), Access::Read);
        assert_eq!(c.classify("SELECT 1"), Access::Read);
        assert_eq!(c.classify("UPDATE t SET v = 1"), Access::Write);
    }
}
