#!/usr/bin/env bash
# Measures pgcorral against PgBouncer (Debian package) in one run, on the same machine and
# the same PostgreSQL, with ../shared/bench: transaction mode, pool size 20, trust auth.
# Prints the harness's medians and the pgcorral/PgBouncer ratios of tps and CPU µs/tx.
#
# Usage: benches/compare-pgbouncer.sh [ROUNDS] [DURATION] [SCENARIOS]
#   defaults: 2 rounds, 15 s, "simple extended prepared select_only many_clients"
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$ROOT/../shared/bench}
ROUNDS=${1:-2}; DURATION=${2:-15}; SCENARIOS=${3:-"simple extended prepared select_only many_clients"}
export BENCH_DIR=${BENCH_DIR:-/tmp/bench}
OUT=$BENCH_DIR/compare-$(date +%Y%m%d-%H%M%S).tsv
PGB_PORT=6434; PGC_PORT=6433

command -v pgbouncer >/dev/null || { apt-get update -qq && apt-get install -y -qq pgbouncer; }
(cd "$ROOT" && cargo build --release --quiet --bin pgcorral)
"$BENCH/pg-up.sh"

mkdir -p "$BENCH_DIR/pgb"
cat > "$BENCH_DIR/pgb/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=${PG_PORT:-5433} dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
auth_type = trust
auth_file = $BENCH_DIR/pgb/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 20000
logfile = $BENCH_DIR/pgb/pgbouncer.log
pidfile = $BENCH_DIR/pgb/pgbouncer.pid
unix_socket_dir =
INI
echo '"postgres" ""' > "$BENCH_DIR/pgb/userlist.txt"
chown -R postgres "$BENCH_DIR/pgb"
cat > "$BENCH_DIR/pgcorral.toml" <<TOML
[general]
listen = "127.0.0.1:$PGC_PORT"
auth_type = "trust"
log_level = "warn"
max_client_conn = 20000
[users.postgres]
[pools.postgres]
pool_mode = "transaction"
pool_size = 20
servers = [{ host = "127.0.0.1", port = ${PG_PORT:-5433}, role = "primary" }]
TOML

ulimit -n 20000 || true
runuser -u postgres -- pgbouncer -d "$BENCH_DIR/pgb/pgbouncer.ini"
"$ROOT/target/release/pgcorral" -c "$BENCH_DIR/pgcorral.toml" 2> "$BENCH_DIR/pgcorral.log" &
PGC_PID=$!
sleep 1
PGB_PID=$(cat "$BENCH_DIR/pgb/pgbouncer.pid")
trap 'kill $PGC_PID 2>/dev/null; kill $PGB_PID 2>/dev/null' EXIT

ROUNDS=$ROUNDS DURATION=$DURATION SCENARIOS=$SCENARIOS \
  "$BENCH/run-all.sh" "$OUT" direct:${PG_PORT:-5433}: pgbouncer:$PGB_PORT:$PGB_PID pgcorral:$PGC_PORT:$PGC_PID
"$BENCH/summarize.py" "$OUT"
python3 "$ROOT/benches/ratios.py" "$OUT"
