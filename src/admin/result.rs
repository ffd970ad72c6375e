//! A result set (text columns) and its rendering as RowDescription, DataRows and
//! CommandComplete, as psql and PgBouncer exporters expect from the console.

use bytes::BytesMut;

use crate::protocol::builder;

/// Rows of text values under named columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    pub fn new(columns: &[&'static str]) -> ResultSet {
        ResultSet {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; values are rendered with `to_string`.
    pub fn push(&mut self, row: Vec<Option<String>>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    /// Writes the result set and a `SHOW` CommandComplete.
    pub fn render(&self, out: &mut BytesMut) {
        builder::row_description(out, &self.columns);
        for row in &self.rows {
            let values: Vec<Option<&str>> = row.iter().map(|v| v.as_deref()).collect();
            builder::data_row(out, &values);
        }
        builder::command_complete(out, "SHOW");
    }
}

/// A value cell.
pub fn v(x: impl ToString) -> Option<String> {
    Some(x.to_string())
}
