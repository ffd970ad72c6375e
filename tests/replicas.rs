//! Replicas: balancing, roles and read/write routing, bans and health checks, failover — on
//! real streaming replication (a primary and replicas made with pg_basebackup -R).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::clients::pgbench;
use common::pg::{PgCluster, PgOptions};
use common::pooler::Pooler;
use common::raw::RawClient;
use common::stack::bin;
use common::wait::{wait_until, wait_until_async};

/// A primary and `n` streaming replicas.
struct Replicated {
    primary: PgCluster,
    replicas: Vec<PgCluster>,
}

impl Replicated {
    fn start(n: usize) -> Replicated {
        let primary = PgCluster::start_with(PgOptions {
            replication: true,
            ..Default::default()
        });
        primary.psql("CREATE TABLE writes (who text, n int)");
        let replicas = (0..n).map(|_| primary.start_replica()).collect();
        Replicated { primary, replicas }
    }

    /// A pooler whose pool `postgres` lists the primary (`primary_role`) and the replicas
    /// (`replica_role`), plus `pool` lines.
    fn pooler(&self, primary_role: &str, replica_role: &str, pool: &str) -> Pooler {
        let port = Pooler::free_port();
        let mut servers = vec![format!(
            "{{ host = \"127.0.0.1\", port = {}, role = \"{primary_role}\" }}",
            self.primary.port
        )];
        for r in &self.replicas {
            servers.push(format!(
                "{{ host = \"127.0.0.1\", port = {}, role = \"{replica_role}\" }}",
                r.port
            ));
        }
        let toml = format!(
            "[general]\nlisten = \"127.0.0.1:{port}\"\nauth_type = \"trust\"\nlog_level = \"debug\"\n\
             [users.postgres]\n[pools.postgres]\n{pool}\nservers = [{}]\n",
            servers.join(", ")
        );
        Pooler::start(&bin(), &toml)
    }

    fn ports(&self) -> Vec<u16> {
        std::iter::once(self.primary.port)
            .chain(self.replicas.iter().map(|r| r.port))
            .collect()
    }
}

/// Runs `n` single-statement transactions and counts which server port answered each.
async fn server_ports(c: &mut RawClient, n: usize) -> HashMap<u16, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let port: u16 = c.value("SELECT inet_server_port()").await.parse().unwrap();
        *seen.entry(port).or_default() += 1;
    }
    seen
}

#[tokio::test]
async fn each_balancing_mode_spreads_transactions_over_every_server() {
    let cluster = Replicated::start(2);
    let ports = cluster.ports();
    for mode in ["round_robin", "random", "least_outstanding"] {
        let pooler = cluster.pooler(
            "primary",
            "replica",
            &format!("load_balancing = \"{mode}\""),
        );
        let mut c = RawClient::login(pooler.port, "postgres", "postgres", &[]).await;
        let seen = server_ports(&mut c, 300).await;
        for p in &ports {
            let n = seen.get(p).copied().unwrap_or(0);
            if mode == "round_robin" {
                assert_eq!(n, 100, "{mode}: {seen:?}");
            } else {
                assert!((50..=150).contains(&n), "{mode}: {seen:?}");
            }
        }
    }
}

#[tokio::test]
async fn server_role_setting_steers_transactions() {
    let cluster = Replicated::start(2);
    let pooler = cluster.pooler("primary", "replica", "load_balancing = \"round_robin\"");
    let mut c = RawClient::login(pooler.port, "postgres", "postgres", &[]).await;
    assert_eq!(c.value("SHOW SERVER ROLE").await, "any");
    c.query("SET SERVER ROLE TO 'primary'").await.unwrap();
    assert_eq!(c.value("SHOW SERVER ROLE").await, "primary");
    let seen = server_ports(&mut c, 20).await;
    assert_eq!(seen.get(&cluster.primary.port), Some(&20), "{seen:?}");
    c.query("set server role = replica;").await.unwrap();
    let seen = server_ports(&mut c, 20).await;
    assert_eq!(seen.get(&cluster.primary.port), None, "{seen:?}");
    assert_eq!(seen.len(), 2, "both replicas used: {seen:?}");
    let err = c.query("SET SERVER ROLE TO 'leader'").await.unwrap_err();
    assert_eq!(err[&b'C'], "22023");
    // The connection is still fine after the error.
    assert_eq!(c.value("SHOW SERVER ROLE").await, "replica");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_write_split_sends_no_write_to_a_replica() {
    let cluster = Replicated::start(2);
    let pooler = cluster.pooler("primary", "replica", "read_write_split = true");
    let port = pooler.port;
    let replica_ports: Vec<u16> = cluster.replicas.iter().map(|r| r.port).collect();
    let tasks: Vec<_> = (0..4)
        .map(|w| {
            let replica_ports = replica_ports.clone();
            tokio::spawn(async move {
                let mut c = RawClient::login(port, "postgres", "postgres", &[]).await;
                let mut reads_on_replicas = 0;
                for i in 0..25 {
                    // Autocommit writes, reads, an explicit transaction that reads then writes,
                    // a locking read, and a write hidden in a CTE: every write must reach the
                    // primary (a replica would refuse it with 25006).
                    c.query(&format!("INSERT INTO writes VALUES ('w{w}', {i})")).await.unwrap();
                    let p: u16 = c.value("SELECT inet_server_port()").await.parse().unwrap();
                    if replica_ports.contains(&p) {
                        reads_on_replicas += 1;
                    }
                    c.query("BEGIN").await.unwrap();
                    c.query("SELECT count(*) FROM writes").await.unwrap();
                    c.query(&format!("UPDATE writes SET n = n WHERE who = 'w{w}'")).await.unwrap();
                    c.query("COMMIT").await.unwrap();
                    c.query("SELECT * FROM writes WHERE who = 'nobody' FOR UPDATE").await.unwrap();
                    c.query(&format!(
                        "WITH d AS (DELETE FROM writes WHERE who = 'w{w}' AND n = -1 RETURNING *) SELECT count(*) FROM d"
                    ))
                    .await
                    .unwrap();
                }
                reads_on_replicas
            })
        })
        .collect();
    let mut reads_on_replicas = 0;
    for t in tasks {
        reads_on_replicas += t.await.unwrap();
    }
    assert_eq!(cluster.primary.psql("SELECT count(*) FROM writes"), "100");
    assert_eq!(reads_on_replicas, 100, "plain reads went to replicas");
}

#[tokio::test]
async fn a_stopped_replica_is_banned_and_rejoins_after_ban_time() {
    let mut cluster = Replicated::start(2);
    let pooler = cluster.pooler(
        "primary",
        "replica",
        "default_role = \"replica\"\nload_balancing = \"round_robin\"\nhealthcheck_interval = \"200ms\"\nban_time = \"1s\"",
    );
    let (r0, r1) = (cluster.replicas[0].port, cluster.replicas[1].port);
    let mut c = RawClient::login(pooler.port, "postgres", "postgres", &[]).await;
    server_ports(&mut c, 10).await;
    cluster.replicas[1].stop();
    // Every transaction succeeds: the dead replica is banned (by the failed connect or the
    // health check) and its share goes to the other one.
    let seen = server_ports(&mut c, 40).await;
    assert_eq!(seen.get(&r0), Some(&40), "{seen:?}");
    assert!(pooler.log().contains("server banned"), "ban is logged");
    cluster.replicas[1].restart();
    let port = pooler.port;
    wait_until_async(
        "the replica takes traffic again",
        Duration::from_secs(15),
        || async move {
            let mut c = RawClient::login(port, "postgres", "postgres", &[]).await;
            server_ports(&mut c, 10).await.contains_key(&r1)
        },
    )
    .await;
    assert!(pooler.log().contains("server unbanned"), "unban is logged");
}

#[tokio::test]
async fn reads_fall_back_to_the_primary_when_every_replica_is_down() {
    let mut cluster = Replicated::start(2);
    let split = cluster.pooler(
        "primary",
        "replica",
        "read_write_split = true\nhealthcheck_interval = \"200ms\"",
    );
    let any = cluster.pooler("primary", "replica", "healthcheck_interval = \"200ms\"");
    let only_replicas = cluster.pooler(
        "primary",
        "replica",
        "default_role = \"replica\"\nhealthcheck_interval = \"200ms\"",
    );
    for r in &mut cluster.replicas {
        r.stop();
    }
    let mut c = RawClient::login(split.port, "postgres", "postgres", &[]).await;
    let seen = server_ports(&mut c, 10).await;
    assert_eq!(seen.get(&cluster.primary.port), Some(&10), "{seen:?}");
    let mut a = RawClient::login(any.port, "postgres", "postgres", &[]).await;
    let seen = server_ports(&mut a, 10).await;
    assert_eq!(
        seen.get(&cluster.primary.port),
        Some(&10),
        "default_role any: {seen:?}"
    );
    // A client that asked for replicas only gets a clear error naming the pool, not a hang.
    let mut r = RawClient::login(only_replicas.port, "postgres", "postgres", &[]).await;
    let started = Instant::now();
    let err = r.query("SELECT 1").await.unwrap_err();
    assert_eq!(err[&b'C'], "08006", "{err:?}");
    assert!(err[&b'M'].contains("pool \"postgres/postgres\""), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_for_query_timeout_lost_connection_and_checkout_timeout() {
    let cluster = Replicated::start(1);
    let pooler = cluster.pooler(
        "primary",
        "replica",
        "default_role = \"replica\"\nquery_timeout = \"300ms\"\nban_time = \"60s\"\npool_size = 1\nquery_wait_timeout = \"300ms\"",
    );
    let mut c = RawClient::login(pooler.port, "postgres", "postgres", &[]).await;
    let err = c.query("SELECT pg_sleep(5)").await.unwrap_err();
    assert_eq!(err[&b'C'], "57014");
    wait_until("the query_timeout ban", Duration::from_secs(5), || {
        pooler
            .log()
            .contains("a query on it exceeded query_timeout")
    });

    let other = cluster.pooler(
        "primary",
        "replica",
        "default_role = \"replica\"\npool_size = 1\nquery_wait_timeout = \"300ms\"",
    );
    // Lost connection: the replica backend is terminated under a running query.
    let mut victim = RawClient::login(other.port, "postgres", "postgres", &[]).await;
    victim
        .send(&common::clients::query_message("SELECT pg_sleep(30)"))
        .await;
    let replica = &cluster.replicas[0];
    wait_until(
        "the query runs on the replica",
        Duration::from_secs(10),
        || {
            replica
                .psql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'")
                == "1"
        },
    );
    replica.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'");
    victim.expect_error(Duration::from_secs(10)).await;
    wait_until("the lost-connection ban", Duration::from_secs(5), || {
        other
            .log()
            .contains("lost its connection to it mid-transaction")
    });

    // Checkout timeout: the single connection is held, the next client's wait times out.
    let third = cluster.pooler(
        "primary",
        "replica",
        "default_role = \"replica\"\npool_size = 1\nquery_wait_timeout = \"300ms\"",
    );
    let mut holder = RawClient::login(third.port, "postgres", "postgres", &[]).await;
    holder.query("BEGIN").await.unwrap();
    let mut waiter = RawClient::login(third.port, "postgres", "postgres", &[]).await;
    let err = waiter.query("SELECT 1").await.unwrap_err();
    assert_eq!(err[&b'C'], "53400");
    wait_until("the checkout-timeout ban", Duration::from_secs(5), || {
        third.log().contains("a checkout on it timed out")
    });
}

#[tokio::test]
async fn a_lagging_replica_is_banned_until_it_catches_up() {
    let cluster = Replicated::start(1);
    let pooler = cluster.pooler(
        "primary",
        "replica",
        "max_replica_lag = \"500ms\"\nhealthcheck_interval = \"200ms\"",
    );
    RawClient::login(pooler.port, "postgres", "postgres", &[]).await;
    let replica = &cluster.replicas[0];
    // Lag is measured from the last replayed commit: let the replica replay one first.
    cluster.primary.psql("INSERT INTO writes VALUES ('lag', 0)");
    wait_until(
        "the replica replayed a commit",
        Duration::from_secs(10),
        || replica.psql("SELECT count(*) FROM writes WHERE who = 'lag'") == "1",
    );
    replica.psql("SELECT pg_wal_replay_pause()");
    cluster.primary.psql("INSERT INTO writes VALUES ('lag', 1)");
    wait_until("the lag ban", Duration::from_secs(10), || {
        cluster.primary.psql("INSERT INTO writes VALUES ('lag', 2)");
        pooler.log().contains("exceeds max_replica_lag")
    });
    let mut c = RawClient::login(pooler.port, "postgres", "postgres", &[]).await;
    let seen = server_ports(&mut c, 10).await;
    assert_eq!(
        seen.get(&cluster.primary.port),
        Some(&10),
        "the lagging replica gets nothing: {seen:?}"
    );
    replica.psql("SELECT pg_wal_replay_resume()");
    wait_until("unbanned once caught up", Duration::from_secs(10), || {
        pooler.log().contains("server unbanned")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_of_an_auto_replica_resumes_writes_without_a_config_change() {
    let mut cluster = Replicated::start(1);
    let pooler = cluster.pooler(
        "auto",
        "auto",
        "read_write_split = true\nhealthcheck_interval = \"200ms\"\nhealthcheck_timeout = \"500ms\"\nquery_wait_timeout = \"30s\"",
    );
    let mut c = RawClient::login(pooler.port, "postgres", "postgres", &[]).await;
    c.query("INSERT INTO writes VALUES ('before', 1)")
        .await
        .unwrap();
    cluster.primary.stop();
    // A write issued while there is no primary waits for one instead of failing.
    let port = pooler.port;
    // Timed from before the spawn: the write cannot finish before the promotion below.
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        let mut w = RawClient::login(port, "postgres", "postgres", &[]).await;
        let r = w.query("INSERT INTO writes VALUES ('during', 1)").await;
        (r, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.replicas[0].promote();
    let (result, waited) = tokio::time::timeout(Duration::from_secs(20), writer)
        .await
        .expect("the write finished")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        waited >= Duration::from_millis(400),
        "it waited for the promotion"
    );
    assert_eq!(
        cluster.replicas[0].psql("SELECT count(*) FROM writes WHERE who = 'during'"),
        "1"
    );
    assert!(
        pooler.log().contains("role: primary"),
        "the new role is logged"
    );
}

#[tokio::test]
async fn writes_wait_for_a_down_primary_then_fail_clearly() {
    let mut cluster = Replicated::start(1);
    let pooler = cluster.pooler(
        "primary",
        "replica",
        "read_write_split = true\nquery_wait_timeout = \"1s\"\nhealthcheck_interval = \"200ms\"",
    );
    let mut c = RawClient::login(pooler.port, "postgres", "postgres", &[]).await;
    cluster.primary.stop();
    let started = Instant::now();
    let err = c
        .query("INSERT INTO writes VALUES ('x', 1)")
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err[&b'C'], "53400", "{err:?}");
    assert!(err[&b'M'].contains("pool \"postgres/postgres\""), "{err:?}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Reads still work, from the replica.
    let mut r = RawClient::login(pooler.port, "postgres", "postgres", &[]).await;
    assert_eq!(r.value("SELECT 1").await, "1");
}

#[test]
fn a_replica_killed_under_pgbench_costs_only_its_running_transactions() {
    let mut cluster = Replicated::start(2);
    common::clients::pgbench_init(cluster.primary.port);
    let pooler = cluster.pooler(
        "primary",
        "replica",
        "default_role = \"replica\"\npool_size = 10\nhealthcheck_interval = \"500ms\"",
    );
    let port = pooler.port;
    let run = std::thread::spawn(move || {
        pgbench(
            port,
            "postgres",
            "postgres",
            None,
            &["-n", "-S", "-c", "20", "-j", "2", "-T", "6"],
        )
    });
    std::thread::sleep(Duration::from_secs(2));
    cluster.replicas[1].stop();
    let out = run.join().unwrap();
    let aborted = out.stderr.matches("aborted in command").count();
    let processed: u64 = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    eprintln!("replica killed under pgbench -c 20 -S: {aborted} clients aborted, {processed} transactions processed");
    // At most the transactions running on the killed replica fail (its pool_size bounds them).
    assert!(aborted <= 10, "{aborted} aborted:\n{}", out.stderr);
    assert!(processed > 1000, "the others carried on: {}", out.stdout);
}

#[tokio::test]
async fn connect_and_health_check_failures_ban_with_their_reason() {
    let mut cluster = Replicated::start(2);
    // Two poolers that have seen every server up: one checks often, one (almost) never.
    let quiet = cluster.pooler("primary", "replica", "healthcheck_interval = \"200ms\"");
    let busy = cluster.pooler(
        "primary",
        "replica",
        "default_role = \"replica\"\nload_balancing = \"round_robin\"\nhealthcheck_interval = \"60s\"",
    );
    RawClient::login(quiet.port, "postgres", "postgres", &[]).await;
    let mut c = RawClient::login(busy.port, "postgres", "postgres", &[]).await;
    server_ports(&mut c, 4).await;
    let stopped = cluster.replicas[1].port;
    cluster.replicas[1].stop();
    // A health check failure: the replica stopped while no client of `quiet` used it.
    wait_until("the health-check ban", Duration::from_secs(10), || {
        quiet.log().lines().any(|l| {
            l.contains("server banned")
                && l.contains("health check failed")
                && l.contains(&format!(":{stopped}"))
        })
    });
    // A connect failure: `busy` has not checked yet, so a client's turn lands on the dead
    // replica; the client is not failed, the other replica serves it.
    let seen = server_ports(&mut c, 10).await;
    assert_eq!(seen.get(&cluster.replicas[0].port), Some(&10), "{seen:?}");
    // The balancer actor bans (and logs) on its own thread, maybe just after the client moved on.
    wait_until("the connect-failure ban", Duration::from_secs(10), || {
        busy.log()
            .lines()
            .any(|l| l.contains("server banned") && l.contains("connecting failed"))
    });
}
