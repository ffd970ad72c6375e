//! Automatic sharding: the values of the sharding key (`automatic_sharding_key =
//! "table.column"`) in an INSERT, SELECT, UPDATE or DELETE, found with PostgreSQL's parser.
//!
//! Recognised: `INSERT INTO table (…, column, …) VALUES (…), (…)`, and in WHERE clauses
//! `column = value`, `value = column` and `column IN (value, …)` where the column is
//! unqualified or qualified by the table or its alias. Values are integer literals, string
//! literals holding an integer, casts of those, or `$n` parameters (resolved from Bind).

use pg_query::protobuf::{a_const, AExprKind, Node};
use pg_query::{NodeEnum, NodeRef};

/// The configured sharding key column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyColumn {
    pub table: String,
    pub column: String,
}

impl KeyColumn {
    /// From `"table.column"` (validated by the config loader).
    pub fn parse(s: &str) -> Option<KeyColumn> {
        let (table, column) = s.rsplit_once('.')?;
        Some(KeyColumn {
            table: table.to_owned(),
            column: column.to_owned(),
        })
    }
}

/// A sharding key value as it appears in a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyValue {
    Literal(i64),
    /// `$n` (1-based), bound later.
    Param(usize),
}

/// Every sharding key value in `sql` (empty when the statement names none or does not parse).
pub fn key_values(sql: &str, key: &KeyColumn) -> Vec<KeyValue> {
    let Ok(parsed) = pg_query::parse(sql, 0) else {
        return Vec::new();
    };
    let table_matches =
        |name: &str| name == key.table || name.rsplit('.').next() == Some(&key.table);
    if !parsed.tables().iter().any(|t| table_matches(t)) {
        return Vec::new();
    }
    let nodes = parsed.protobuf.nodes();
    // Names the table goes by in this statement: its own and its aliases.
    let mut names = vec![key.table.clone()];
    for (node, ..) in &nodes {
        if let NodeRef::RangeVar(r) = node {
            if r.relname == key.table {
                if let Some(a) = &r.alias {
                    names.push(a.aliasname.clone());
                }
            }
        }
    }
    let is_key = |n: &Node| match n.node.as_ref() {
        Some(NodeEnum::ColumnRef(c)) => {
            let fields: Vec<&str> = c
                .fields
                .iter()
                .filter_map(|f| match f.node.as_ref() {
                    Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                    _ => None,
                })
                .collect();
            match fields.as_slice() {
                [col] => *col == key.column,
                [.., qual, col] => *col == key.column && names.iter().any(|n| n == qual),
                _ => false,
            }
        }
        _ => false,
    };
    let mut out = Vec::new();
    for (node, ..) in &nodes {
        match node {
            NodeRef::InsertStmt(ins) => {
                if ins.relation.as_ref().map(|r| r.relname.as_str()) != Some(&key.table) {
                    continue;
                }
                let Some(idx) = ins.cols.iter().position(|c| {
                    matches!(c.node.as_ref(), Some(NodeEnum::ResTarget(t)) if t.name == key.column)
                }) else {
                    continue;
                };
                let Some(NodeEnum::SelectStmt(sel)) =
                    ins.select_stmt.as_ref().and_then(|s| s.node.as_ref())
                else {
                    continue;
                };
                for row in &sel.values_lists {
                    if let Some(NodeEnum::List(l)) = row.node.as_ref() {
                        out.extend(l.items.get(idx).and_then(value_of));
                    }
                }
            }
            NodeRef::AExpr(e) => {
                let op = e
                    .name
                    .iter()
                    .any(|n| matches!(n.node.as_ref(), Some(NodeEnum::String(s)) if s.sval == "="));
                let (Some(l), Some(r)) = (e.lexpr.as_deref(), e.rexpr.as_deref()) else {
                    continue;
                };
                match AExprKind::try_from(e.kind) {
                    Ok(AExprKind::AexprOp) if op => {
                        if is_key(l) {
                            out.extend(value_of(r));
                        } else if is_key(r) {
                            out.extend(value_of(l));
                        }
                    }
                    Ok(AExprKind::AexprIn) if op && is_key(l) => {
                        if let Some(NodeEnum::List(list)) = r.node.as_ref() {
                            out.extend(list.items.iter().filter_map(value_of));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

fn value_of(n: &Node) -> Option<KeyValue> {
    match n.node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            a_const::Val::Ival(i) => Some(KeyValue::Literal(i.ival.into())),
            a_const::Val::Fval(f) => f.fval.parse().ok().map(KeyValue::Literal),
            a_const::Val::Sval(s) => s.sval.trim().parse().ok().map(KeyValue::Literal),
            _ => None,
        },
        NodeEnum::ParamRef(p) => usize::try_from(p.number).ok().map(KeyValue::Param),
        NodeEnum::TypeCast(t) => value_of(t.arg.as_deref()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyValue::*;

    fn key() -> KeyColumn {
        KeyColumn::parse("orders.customer_id").unwrap()
    }

    #[test]
    fn finds_keys_in_inserts() {
        assert_eq!(
            key_values(
                "INSERT INTO orders (id, customer_id) VALUES (1, 42), (2, '-7')",
                &key()
            ),
            vec![Literal(42), Literal(-7)]
        );
        assert_eq!(
            key_values(
                "INSERT INTO orders (customer_id, total) VALUES ($2, $1)",
                &key()
            ),
            vec![Param(2)]
        );
        assert_eq!(
            key_values(
                "INSERT INTO orders (customer_id) VALUES (9223372036854775807)",
                &key()
            ),
            vec![Literal(i64::MAX)]
        );
    }

    #[test]
    fn finds_keys_in_where_clauses() {
        assert_eq!(
            key_values(
                "SELECT * FROM orders WHERE customer_id = 5 AND total > 3",
                &key()
            ),
            vec![Literal(5)]
        );
        assert_eq!(
            key_values("UPDATE orders SET total = 0 WHERE 12 = customer_id", &key()),
            vec![Literal(12)]
        );
        assert_eq!(
            key_values(
                "DELETE FROM orders o WHERE o.customer_id = $1::bigint",
                &key()
            ),
            vec![Param(1)]
        );
        assert_eq!(
            key_values(
                "SELECT * FROM orders WHERE customer_id IN (1, 2, 3)",
                &key()
            ),
            vec![Literal(1), Literal(2), Literal(3)]
        );
    }

    #[test]
    fn ignores_other_tables_and_columns() {
        assert_eq!(
            key_values("SELECT * FROM users WHERE customer_id = 5", &key()),
            vec![]
        );
        assert_eq!(
            key_values("SELECT * FROM orders WHERE id = 5", &key()),
            vec![]
        );
        assert_eq!(
            key_values(
                "SELECT * FROM orders o JOIN users u ON true WHERE u.customer_id = 5",
                &key()
            ),
            vec![]
        );
        assert_eq!(key_values("SELECT 1", &key()), vec![]);
        assert_eq!(key_values("not sql at all", &key()), vec![]);
    }
}
