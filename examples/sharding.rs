//! Sharding demo: `orders` hash-partitioned by `customer_id` over three shard databases
//! (partition `REMAINDER r` of `MODULUS 3` lives in database `orders_r`), written and read
//! through pgcorral by key with automatic sharding, and checked against PostgreSQL's own
//! placement.
//!
//! Run it with `cargo run --release --example sharding`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::pg::PgCluster;
use common::pooler::Pooler;
use common::raw::RawClient;
use common::stack::bin;

const SHARDS: usize = 3;
const ORDERS: i64 = 1000;

#[tokio::main]
async fn main() {
    // `cargo run --example` builds the example, not the daemon.
    common::stack::build_pgcorral();

    println!("==> a throwaway PostgreSQL with {SHARDS} shard databases");
    let pg = PgCluster::start();
    for r in 0..SHARDS {
        pg.psql(&format!("CREATE DATABASE orders_{r}"));
        // Each shard database holds one partition's worth of the table.
        pg.psql_db(
            &format!("orders_{r}"),
            "CREATE TABLE orders (customer_id bigint NOT NULL, item text, total numeric)",
        );
    }
    // The same table, hash-partitioned in one database: PostgreSQL's own placement.
    pg.psql(
        "CREATE TABLE orders (customer_id bigint NOT NULL, item text, total numeric) \
         PARTITION BY HASH (customer_id)",
    );
    for r in 0..SHARDS {
        pg.psql(&format!(
            "CREATE TABLE orders_p{r} PARTITION OF orders FOR VALUES WITH (MODULUS {SHARDS}, REMAINDER {r})"
        ));
    }

    let port = Pooler::free_port();
    let mut toml = format!(
        "[general]\nlisten = \"127.0.0.1:{port}\"\nauth_type = \"trust\"\nlog_level = \"warn\"\n\
         [users.postgres]\n[pools.orders]\nsharding_function = \"pg_bigint_hash\"\n\
         automatic_sharding_key = \"orders.customer_id\"\n"
    );
    for r in 0..SHARDS {
        toml.push_str(&format!(
            "[[pools.orders.shards]]\ndatabase = \"orders_{r}\"\nservers = [{{ host = \"127.0.0.1\", port = {} }}]\n",
            pg.port
        ));
    }
    let _pooler = Pooler::start(&bin(), &toml);
    println!(
        "==> pgcorral on 127.0.0.1:{port}, pool \"orders\" over orders_0..orders_{}",
        SHARDS - 1
    );

    println!("==> writing {ORDERS} orders through pgcorral, routed by customer_id");
    let mut c = RawClient::login(port, "postgres", "orders", &[]).await;
    for i in 0..ORDERS {
        let customer = i * 7_919 - 3_000_000;
        c.query(&format!(
            "INSERT INTO orders (customer_id, item, total) VALUES ({customer}, 'item {i}', {i})"
        ))
        .await
        .expect("insert through pgcorral");
    }
    // The reference table gets the same keys directly.
    pg.psql(&format!(
        "INSERT INTO orders SELECT i * 7919 - 3000000, 'item ' || i, i FROM generate_series(0, {}) i",
        ORDERS - 1
    ));

    let mut agree = 0;
    for r in 0..SHARDS {
        let on_shard = pg.psql_db(&format!("orders_{r}"), "SELECT count(*) FROM orders");
        let in_partition = pg.psql(&format!("SELECT count(*) FROM orders_p{r}"));
        let same = pg.psql(&format!(
            "SELECT count(*) FROM orders_p{r} WHERE customer_id IN ({})",
            pg.psql_db(
                &format!("orders_{r}"),
                "SELECT string_agg(customer_id::text, ',') FROM orders"
            )
        ));
        agree += same.parse::<i64>().unwrap_or(0);
        println!("    shard {r} (database orders_{r}): {on_shard} orders; PostgreSQL's partition {r}: {in_partition}");
    }
    println!("==> {agree} of {ORDERS} orders are on the shard PostgreSQL's PARTITION BY HASH puts them on");

    println!("==> reading back by key through pgcorral");
    for i in [0, 1, 500, ORDERS - 1] {
        let customer = i * 7_919 - 3_000_000;
        let item = c
            .value(&format!(
                "SELECT item FROM orders WHERE customer_id = {customer}"
            ))
            .await;
        let shard = c
            .value(&format!(
                "SELECT current_database() FROM orders WHERE customer_id = {customer}"
            ))
            .await;
        println!("    customer {customer}: {item} (from {shard})");
    }
    assert_eq!(agree, ORDERS, "placement disagrees with PostgreSQL");
}
