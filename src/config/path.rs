//! Key paths as messages show them: `pools.app.servers[0].port`.

/// `parent.key`, with `key` quoted as TOML would need it (`pools."my.db"`).
pub(super) fn join(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let segment = if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    };
    if parent.is_empty() {
        segment
    } else {
        format!("{parent}.{segment}")
    }
}

/// `parent[index]`, for an element of an array.
pub(super) fn index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_and_quotes() {
        assert_eq!(join("", "general"), "general");
        assert_eq!(join("pools", "app-1"), "pools.app-1");
        assert_eq!(join("pools", "my.db"), "pools.\"my.db\"");
        assert_eq!(join("pools", ""), "pools.\"\"");
        assert_eq!(index("pools.app.servers", 2), "pools.app.servers[2]");
    }
}
