//! Sharding on real shard databases: placement agrees with PostgreSQL's own hash
//! partitioning, rows written by key land on their shard and read back, SET SHARD and comment
//! hints, and clear errors for cross-shard statements and missing shards.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::clients::{error_fields, read_message};
use common::pg::PgCluster;
use common::pooler::Pooler;
use common::raw::RawClient;
use common::stack::bin;
use pgcorral::config::ShardingFunction;
use pgcorral::route::sharding::shard_for;

/// A cluster with `n` shard databases `<prefix>_0 … <prefix>_{n-1}`, each with `items`.
fn shard_databases(pg: &PgCluster, prefix: &str, n: usize) {
    for i in 0..n {
        pg.psql(&format!("CREATE DATABASE {prefix}_{i}"));
        pg.psql_db(
            &format!("{prefix}_{i}"),
            "CREATE TABLE items (id bigint PRIMARY KEY, v text)",
        );
    }
}

/// A pooler with pool `sharded` over the `n` shard databases, plus `pool` lines.
fn sharded_pooler(pg: &PgCluster, prefix: &str, n: usize, pool: &str) -> Pooler {
    let port = Pooler::free_port();
    let mut toml = format!(
        "[general]\nlisten = \"127.0.0.1:{port}\"\nauth_type = \"trust\"\nlog_level = \"debug\"\n\
         [users.postgres]\n[pools.sharded]\n{pool}\n"
    );
    for i in 0..n {
        toml.push_str(&format!(
            "[[pools.sharded.shards]]\ndatabase = \"{prefix}_{i}\"\n\
             servers = [{{ host = \"127.0.0.1\", port = {} }}]\n",
            pg.port
        ));
    }
    Pooler::start(&bin(), &toml)
}

/// The shard index a query ran on, from current_database().
async fn shard_of(c: &mut RawClient, sql: &str) -> usize {
    let db = c.value(sql).await;
    db.rsplit('_').next().unwrap().parse().unwrap()
}

fn keys() -> Vec<i64> {
    let mut keys: Vec<i64> = (-150..150).map(|i| i * 7919 + 13).collect();
    keys.extend([
        0,
        1,
        -1,
        i64::MIN,
        i64::MAX,
        i64::MIN + 1,
        i64::MAX - 1,
        4_294_967_296,
    ]);
    keys
}

#[tokio::test]
async fn placement_agrees_with_postgres_hash_partitioning_for_2_3_and_5_shards() {
    let pg = PgCluster::start();
    for n in [2usize, 3, 5] {
        // PostgreSQL's own placement: a hash-partitioned table with MODULUS n.
        pg.psql(&format!(
            "CREATE TABLE ref{n} (id bigint) PARTITION BY HASH (id)"
        ));
        for r in 0..n {
            pg.psql(&format!(
                "CREATE TABLE ref{n}_{r} PARTITION OF ref{n} FOR VALUES WITH (MODULUS {n}, REMAINDER {r})"
            ));
        }
        let list: Vec<String> = keys().iter().map(|k| k.to_string()).collect();
        pg.psql(&format!(
            "INSERT INTO ref{n} SELECT unnest('{{{}}}'::bigint[])",
            list.join(",")
        ));
        let expected: HashMap<i64, usize> = pg
            .psql(&format!("SELECT id, tableoid::regclass FROM ref{n}"))
            .lines()
            .map(|l| {
                let (k, part) = l.split_once('|').unwrap();
                (
                    k.parse().unwrap(),
                    part.rsplit('_').next().unwrap().parse().unwrap(),
                )
            })
            .collect();
        assert_eq!(expected.len(), keys().len());

        let prefix = format!("p{n}");
        shard_databases(&pg, &prefix, n);
        let pooler = sharded_pooler(&pg, &prefix, n, "");
        let mut c = RawClient::login(pooler.port, "postgres", "sharded", &[]).await;
        for (i, k) in keys().iter().enumerate() {
            let got = if i % 5 == 0 {
                c.query(&format!("SET SHARDING KEY TO '{k}'"))
                    .await
                    .unwrap();
                shard_of(&mut c, "SELECT current_database()").await
            } else {
                shard_of(
                    &mut c,
                    &format!("/* sharding_key: {k} */ SELECT current_database()"),
                )
                .await
            };
            assert_eq!(got, expected[k], "key {k} with {n} shards");
            assert_eq!(
                shard_for(ShardingFunction::PgBigintHash, *k, n),
                expected[k]
            );
        }
    }
}

/// Extended-protocol messages for an unnamed statement with int8 parameters in binary.
fn extended_insert(sql: &str, params: &[i64]) -> Vec<u8> {
    fn msg(tag: u8, body: Vec<u8>) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend((body.len() as i32 + 4).to_be_bytes());
        m.extend(body);
        m
    }
    let mut parse = b"\0".to_vec();
    parse.extend(sql.as_bytes());
    parse.extend([0, 0, 0]);
    let mut bind = b"\0\0".to_vec();
    bind.extend(1i16.to_be_bytes()); // one format code for all: binary
    bind.extend(1i16.to_be_bytes());
    bind.extend((params.len() as i16).to_be_bytes());
    for p in params {
        bind.extend(8i32.to_be_bytes());
        bind.extend(p.to_be_bytes());
    }
    bind.extend(0i16.to_be_bytes());
    let mut out = msg(b'P', parse);
    out.extend(msg(b'B', bind));
    out.extend(msg(b'E', b"\0\0\0\0\0".to_vec()));
    out.extend(msg(b'S', vec![]));
    out
}

#[tokio::test]
async fn rows_written_by_key_land_on_their_shard_and_read_back() {
    let pg = PgCluster::start();
    shard_databases(&pg, "w", 3);
    let pooler = sharded_pooler(&pg, "w", 3, "automatic_sharding_key = \"items.id\"");
    let mut c = RawClient::login(pooler.port, "postgres", "sharded", &[]).await;
    let keys: Vec<i64> = (0..120).map(|i| i * 104_729 - 6_000_000).collect();
    for (i, k) in keys.iter().enumerate() {
        if i % 2 == 0 {
            // Simple protocol, key as a literal.
            c.query(&format!("INSERT INTO items (id, v) VALUES ({k}, 'v{k}')"))
                .await
                .unwrap();
        } else {
            // Extended protocol, key as a binary Bind parameter.
            c.send(&extended_insert(
                "INSERT INTO items (v, id) VALUES ($1::bigint::text, $2)",
                &[*k, *k],
            ))
            .await;
            c.read_result().await.unwrap();
        }
    }
    // Each shard database holds exactly the keys PostgreSQL's partitioning gives it.
    let mut total = 0;
    for shard in 0..3 {
        let ids: Vec<i64> = pg
            .psql_db(&format!("w_{shard}"), "SELECT id FROM items ORDER BY id")
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        total += ids.len();
        for id in ids {
            assert_eq!(
                shard_for(ShardingFunction::PgBigintHash, id, 3),
                shard,
                "key {id}"
            );
        }
    }
    assert_eq!(total, keys.len());
    // Read back through pgcorral by key, routed automatically.
    for k in &keys {
        let v = c
            .value(&format!("SELECT v FROM items WHERE id = {k}"))
            .await;
        assert!(v == format!("v{k}") || v == k.to_string(), "key {k}: {v}");
    }
}

#[tokio::test]
async fn set_shard_show_shard_and_hints_choose_the_shard() {
    let pg = PgCluster::start();
    shard_databases(&pg, "h", 3);
    let pooler = sharded_pooler(&pg, "h", 3, "");
    let mut c = RawClient::login(pooler.port, "postgres", "sharded", &[]).await;
    assert_eq!(c.value("SHOW SHARD").await, "none");
    c.query("SET SHARD TO '2'").await.unwrap();
    assert_eq!(c.value("SHOW SHARD").await, "2");
    for _ in 0..3 {
        assert_eq!(shard_of(&mut c, "SELECT current_database()").await, 2);
    }
    // A hint wins over the setting for its statement only.
    assert_eq!(
        shard_of(&mut c, "/* shard_id: 1 */ SELECT current_database()").await,
        1
    );
    assert_eq!(shard_of(&mut c, "SELECT current_database()").await, 2);
    let err = c.query("SET SHARD TO '7'").await.unwrap_err();
    assert_eq!(err[&b'C'], "22023");
    assert!(err[&b'M'].contains("has 3 shards"), "{err:?}");
    let err = c.query("/* shard_id: nope */ SELECT 1").await.unwrap_err();
    assert_eq!(err[&b'C'], "22023");
    c.query("SET SHARD TO 'any'").await.unwrap();
    assert_eq!(c.value("SHOW SHARD").await, "any");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        seen.insert(shard_of(&mut c, "SELECT current_database()").await);
    }
    assert_eq!(seen.len(), 3, "'any' spreads over the shards");
}

#[tokio::test]
async fn cross_shard_statements_and_missing_shards_get_clear_errors() {
    let pg = PgCluster::start();
    shard_databases(&pg, "e", 3);
    let pooler = sharded_pooler(&pg, "e", 3, "automatic_sharding_key = \"items.id\"");
    let mut c = RawClient::login(pooler.port, "postgres", "sharded", &[]).await;
    let (a, b) = (
        1i64,
        (2..)
            .find(|k| {
                shard_for(ShardingFunction::PgBigintHash, *k, 3)
                    != shard_for(ShardingFunction::PgBigintHash, 1, 3)
            })
            .unwrap(),
    );
    let err = c
        .query(&format!(
            "INSERT INTO items (id, v) VALUES ({a}, 'a'), ({b}, 'b')"
        ))
        .await
        .unwrap_err();
    assert_eq!(err[&b'C'], "0A000");
    assert!(err[&b'M'].contains("cross-shard"), "{err:?}");
    let err = c
        .query(&format!("SELECT * FROM items WHERE id IN ({a}, {b})"))
        .await
        .unwrap_err();
    assert!(err[&b'M'].contains("cross-shard"), "{err:?}");
    let err = c.query("SELECT count(*) FROM items").await.unwrap_err();
    assert_eq!(err[&b'C'], "0A000");
    assert!(
        err[&b'M'].contains("SET SHARD"),
        "tells how to choose: {err:?}"
    );
    // Extended protocol: the whole request up to Sync fails, the connection carries on.
    c.send(&extended_insert("SELECT $1::bigint + $2", &[a, b]))
        .await;
    let (tag, body) = read_message(&mut c.stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(tag, b'E');
    assert_eq!(error_fields(&body)[&b'C'], "0A000");
    let (tag, _) = read_message(&mut c.stream, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(tag, b'Z');
    // Still usable, and a single key routes fine.
    c.query(&format!("INSERT INTO items (id, v) VALUES ({a}, 'a')"))
        .await
        .unwrap();
    assert_eq!(
        c.value(&format!("SELECT v FROM items WHERE id = {a}"))
            .await,
        "a"
    );
}

#[tokio::test]
async fn default_shard_takes_statements_without_a_key() {
    let pg = PgCluster::start();
    shard_databases(&pg, "d", 3);
    let fixed = sharded_pooler(&pg, "d", 3, "default_shard = \"1\"");
    let random = sharded_pooler(&pg, "d", 3, "default_shard = \"random\"");
    let mut c = RawClient::login(fixed.port, "postgres", "sharded", &[]).await;
    for _ in 0..5 {
        assert_eq!(shard_of(&mut c, "SELECT current_database()").await, 1);
    }
    let mut r = RawClient::login(random.port, "postgres", "sharded", &[]).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        seen.insert(shard_of(&mut r, "SELECT current_database()").await);
    }
    assert_eq!(seen.len(), 3);
}

#[tokio::test]
async fn a_session_mode_client_keeps_the_shard_of_its_first_query() {
    let pg = PgCluster::start();
    shard_databases(&pg, "s", 3);
    let pooler = sharded_pooler(&pg, "s", 3, "pool_mode = \"session\"");
    let mut c = RawClient::login(pooler.port, "postgres", "sharded", &[]).await;
    c.query("SET SHARD TO '1'").await.unwrap();
    assert_eq!(shard_of(&mut c, "SELECT current_database()").await, 1);
    let err = c.query("SET SHARD TO '2'").await.unwrap_err();
    assert_eq!(err[&b'C'], "0A000");
    assert!(err[&b'M'].contains("cannot change"), "{err:?}");
    assert_eq!(c.value("SHOW SHARD").await, "1");
    assert_eq!(shard_of(&mut c, "SELECT current_database()").await, 1);
}
