#!/usr/bin/env bash
# User-space instructions per transaction, counted by callgrind: a figure that, unlike CPU
# time, does not move with machine noise, so a change to the hot path can be judged by itself.
#
# Usage: benches/instructions.sh [MODE] [CLIENTS] [TRANSACTIONS_PER_CLIENT]
#        (defaults: simple 50 400, i.e. 20,000 `SELECT 1` transactions through one arbiter)
#
# It starts PostgreSQL with the shared harness (../shared/bench/pg-up.sh, left running), runs the
# release binary under `valgrind --tool=callgrind` (workers = 1, transaction mode, pool_size 20,
# trust), warms up with 100 transactions per client, zeroes the counters, runs the measured
# transactions with pgbench and prints the total and the per-transaction figure. The profile is
# kept (the path is printed): `callgrind_annotate FILE | head -60` shows where the instructions go.
# Knobs: PGCORRAL_BIN, PORT (6499), BENCH, KEEP_PROFILE=0 to delete the profile.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd)}
. "$BENCH/env.sh"
MODE=${1:-simple}; CLIENTS=${2:-50}; PER=${3:-400}
PGCORRAL_BIN=${PGCORRAL_BIN:-$ROOT/target/release/pgcorral}
PORT=${PORT:-6499}
for v in $(compgen -e | grep '^PGCORRAL_'); do export -n "$v"; done
[ -x "$PGCORRAL_BIN" ] || { echo "no binary at $PGCORRAL_BIN (cargo build --release)" >&2; exit 1; }
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >&2
"$BENCH/pg-up.sh" >&2
WORK=$(mktemp -d /tmp/pgcorral-instr.XXXXXX)
echo 'SELECT 1;' > "$WORK/select1.sql"
cat > "$WORK/pgcorral.toml" <<TOML
[general]
listen = "127.0.0.1:$PORT"
workers = 1
log_level = "warn"
auth_type = "trust"
[users.$BENCH_USER]
[pools.$BENCH_DB]
pool_mode = "transaction"
pool_size = 20
servers = [{ host = "127.0.0.1", port = $PG_PORT, role = "primary" }]
TOML
valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.%p" \
  "$PGCORRAL_BIN" -c "$WORK/pgcorral.toml" 2> "$WORK/valgrind.log" &
VG=$!
trap 'kill $VG 2>/dev/null; wait $VG 2>/dev/null' EXIT
for _ in $(seq 150); do ss -Htln "( sport = :$PORT )" | grep -q . && break; sleep 0.2; done
run() { "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$PORT" -U "$BENCH_USER" -c "$CLIENTS" -j 2 -t "$1" \
          -f "$WORK/select1.sql" -M "$MODE" "$BENCH_DB"; }
run 100 > /dev/null 2>&1
callgrind_control --zero "$VG" > /dev/null 2>&1
done_tx=$(run "$PER" 2>&1 | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
callgrind_control --dump=measured "$VG" > /dev/null 2>&1
kill "$VG"; wait "$VG" 2>/dev/null || true; trap - EXIT
profile=$(ls -t "$WORK"/callgrind.*.* | head -1)
total=$(callgrind_annotate "$profile" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}')
[ -n "$done_tx" ] && [ "$done_tx" -gt 0 ] || { echo "pgbench ran no transactions" >&2; exit 1; }
echo "mode $MODE, $CLIENTS clients: $total instructions for $done_tx transactions = $((total / done_tx)) per transaction"
if [ "${KEEP_PROFILE:-1}" = 1 ]; then echo "profile: $profile"; else rm -rf "$WORK"; fi
