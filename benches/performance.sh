#!/usr/bin/env bash
# pgcorral vs PgBouncer, side by side, in one run: same machine, same PostgreSQL, transaction
# mode, pool size 20. Prints the performance target table (medians of ROUNDS rounds, the ratio
# pgcorral/PgBouncer, the target and whether it is met) as Markdown on stdout; progress goes to
# stderr. Uses the shared harness in ../shared/bench (pg-up.sh, run-all.sh, pgbench-run.sh,
# idle-conns.py) and does not build anything: it runs the existing pgcorral binary.
#
# Usage: benches/performance.sh [ROUNDS] [DURATION]          (defaults: 3 rounds, 20 s per run)
#
# Phases, each round (targets interleaved, their order rotated every round, as run-all.sh does):
#   pgbench  simple extended prepared select_only many_clients through both poolers (run-all.sh)
#   latency  latency1 (1 client) direct, through PgBouncer, through pgcorral: added latency
#            (LATENCY_SPLIT runs of DURATION/LATENCY_SPLIT s per target, interleaved)
#   storm    pgbench -C (new connection per transaction), SELECT 1, STORM_CLIENTS clients,
#            SCRAM-SHA-256 client->pooler and pooler->PostgreSQL as bench_scram/bench, against a
#            second PgBouncer and a second pgcorral started with auth_type scram-sha-256 (plus direct)
#   idle     IDLE_N idle authenticated clients (idle-conns.py --pid --hold 3) against a freshly
#            started instance of each pooler: bytes of RSS per idle client
#   bigidle  per pooler: pgbench simple (50 clients) alone, then again while BIG_IDLE_N idle
#            clients are held open; tps with/without and errors (failed, dropped, pgbench failures)
#
# Environment knobs (all optional):
#   PGCORRAL_BIN   pgcorral binary (default target/release/pgcorral of this checkout)
#   PORT_BASE      first of six ports (default 6433): pgcorral, PgBouncer, pgcorral-scram,
#                  PgBouncer-scram, pgcorral-idle, PgBouncer-idle = PORT_BASE+0..5
#   PHASES         subset of "pgbench latency storm idle bigidle" (default: all)
#   SCENARIOS      pgbench phase scenarios (default "simple extended prepared select_only many_clients")
#   DIRECT_ALL=1   also run the pgbench phase scenarios directly against PostgreSQL (context only)
#   LATENCY_SPLIT  short latency1 runs per target and round (default 3), interleaved
#   IDLE_N (10000) BIG_IDLE_N (18000) STORM_CLIENTS (8) THREADS (2) FD_LIMIT (20000) WARMUP (5 s)
#   PGB_LOG_CONNECTIONS (0): PgBouncer's log_connections/log_disconnections. 0 matches pgcorral,
#                  which runs with log_level = "warn" (it logs logins only at info).
#   PGB_SCRAM_SECRET (verifier): what PgBouncer's userlist holds for bench_scram in the storm:
#                  "verifier" = PostgreSQL's SCRAM verifier from pg_authid (PgBouncer's cheapest
#                  setup: no PBKDF2 per login, pass-through to PostgreSQL), "plain" = "bench"
#                  (PgBouncer then runs PBKDF2, 4096 iterations, on every login). pgcorral always
#                  gets password = "bench" (it cannot log in to PostgreSQL with a verifier alone).
#   BENCH (../shared/bench), BENCH_DIR (/tmp/bench), PG_PORT (5433), PGBIN
# Raw results: $BENCH_DIR/perf-YYYYmmdd-HHMMSS/ (pgbench.tsv, storm.tsv, idle.tsv, bigidle.tsv,
# meta.tsv, logs/, pooler configs and logs, table.md). Rebuild the table: benches/perf_table.py DIR
# PostgreSQL is started with pg-up.sh (idempotent) and left running; stop it with pg-down.sh.
set -uo pipefail   # no -e: a failed measurement is recorded in the TSVs, not fatal
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${BENCH:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd)}
ROUNDS=${1:-${ROUNDS:-3}}; DURATION=${2:-${DURATION:-20}}
export BENCH_DIR=${BENCH_DIR:-/tmp/bench} DURATION
. "$BENCH/env.sh"
PGCORRAL_BIN=${PGCORRAL_BIN:-$ROOT/target/release/pgcorral}
# pgcorral reads every PGCORRAL_* variable as a config override (PGCORRAL_BIN included, which it
# rejects as an unknown key): the poolers must run the generated configs only.
for v in $(compgen -e | grep '^PGCORRAL_'); do export -n "$v"; done
PORT_BASE=${PORT_BASE:-6433}
PGC_PORT=$PORT_BASE; PGB_PORT=$((PORT_BASE + 1))
PGC_SCRAM_PORT=$((PORT_BASE + 2)); PGB_SCRAM_PORT=$((PORT_BASE + 3))
PGC_IDLE_PORT=$((PORT_BASE + 4)); PGB_IDLE_PORT=$((PORT_BASE + 5))
PHASES=${PHASES:-pgbench latency storm idle bigidle}
SCENARIOS=${SCENARIOS:-simple extended prepared select_only many_clients}
IDLE_N=${IDLE_N:-10000}; BIG_IDLE_N=${BIG_IDLE_N:-18000}; STORM_CLIENTS=${STORM_CLIENTS:-8}
PGB_LOG_CONNECTIONS=${PGB_LOG_CONNECTIONS:-0}; FD_LIMIT=${FD_LIMIT:-20000}
PGB_SCRAM_SECRET=${PGB_SCRAM_SECRET:-verifier}
LATENCY_SPLIT=${LATENCY_SPLIT:-3}
LATENCY_DURATION=$(( (DURATION + LATENCY_SPLIT - 1) / LATENCY_SPLIT ))
WARMUP=${WARMUP:-5}         # s of select_only through each pooler before the first round (0 = none)
BIG_WAIT=${BIG_WAIT:-600}   # longest wait for the BIG_IDLE_N clients to be connected, s

OUT=$BENCH_DIR/perf-$(date +%Y%m%d-%H%M%S)
export LOGDIR=$OUT/logs
mkdir -p "$OUT" "$LOGDIR"
exec 2> >(tee -a "$OUT/run.log" >&2)
say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { say "error: $*"; exit 1; }
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }

# ---- checks --------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (PgBouncer and PostgreSQL run as OS user postgres via runuser)"
[ -x "$PGCORRAL_BIN" ] || die "no pgcorral binary at $PGCORRAL_BIN (cargo build --release, or set PGCORRAL_BIN)"
if [ -d "$ROOT/src" ] && [ "$PGCORRAL_BIN" = "$ROOT/target/release/pgcorral" ] &&
   [ -n "$(find "$ROOT/src" "$ROOT/actors" -name '*.rs' -newer "$PGCORRAL_BIN" -print -quit 2>/dev/null)" ]; then
  say "warning: sources are newer than $PGCORRAL_BIN; measuring the binary as it is"
fi
command -v pgbouncer >/dev/null || { apt-get update -qq && apt-get install -y -qq pgbouncer >&2; } ||
  die "cannot install pgbouncer"
ulimit -n "$FD_LIMIT" 2>/dev/null || { say "warning: ulimit -n $FD_LIMIT refused; using $(ulimit -Hn)"; ulimit -n "$(ulimit -Hn)"; }
for p in $PGC_PORT $PGB_PORT $PGC_SCRAM_PORT $PGB_SCRAM_PORT $PGC_IDLE_PORT $PGB_IDLE_PORT; do
  [ -z "$(ss -Htln "( sport = :$p )")" ] || die "port $p is in use (another pooler?); set PORT_BASE"
done
"$BENCH/pg-up.sh" >&2 || die "pg-up.sh failed"
SEL1=$BENCH_DIR/select1.sql; [ -s "$SEL1" ] || echo 'SELECT 1;' > "$SEL1"
TCK=$(getconf CLK_TCK)

# ---- process handling: only PIDs started here are ever signalled ------------------------------
PIDS=()        # pooler PIDs still running
IDLE_PID=      # background idle-conns.py, if any
forget_pid() { local p q keep=(); for q in "${PIDS[@]}"; do [ "$q" = "$1" ] || keep+=("$q"); done; PIDS=("${keep[@]}"); }
proc_state() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1}'; }
stop_pid() {   # SIGTERM, wait up to 10 s, then SIGKILL; reaps it if it is our child
  local p=$1 i s
  kill "$p" 2>/dev/null
  for ((i = 0; i < 100; i++)); do s=$(proc_state "$p"); { [ -z "$s" ] || [ "$s" = Z ]; } && break; sleep 0.1; done
  s=$(proc_state "$p"); [ -n "$s" ] && [ "$s" != Z ] && { say "pid $p did not stop; SIGKILL"; kill -9 "$p" 2>/dev/null; }
  wait "$p" 2>/dev/null
  forget_pid "$p"
}
cleanup() {
  trap - EXIT INT TERM
  [ -n "$IDLE_PID" ] && kill "$IDLE_PID" 2>/dev/null
  local p; for p in "${PIDS[@]}"; do stop_pid "$p"; done
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT TERM
wait_listen() { local i; for ((i = 0; i < 100; i++)); do [ -n "$(ss -Htln "( sport = :$1 )")" ] && return 0; sleep 0.1; done; return 1; }
conns_on() { ss -Htn state established "( sport = :$1 )" | wc -l; }
cpu_ticks() { [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || { echo -; return; }; sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12+$13}'; }

# ---- pooler configs ------------------------------------------------------------------------
pgc_conf() {   # FILE PORT AUTH(trust|scram)
  {
    cat <<TOML
[general]
listen = "127.0.0.1:$2"
log_level = "warn"
max_client_conn = 20000
shutdown_timeout = "2s"
TOML
    if [ "$3" = scram ]; then
      printf 'auth_type = "scram-sha-256"\n[users.bench_scram]\npassword = "bench"\n'
    else
      printf 'auth_type = "trust"\n[users.postgres]\n'
    fi
    cat <<TOML
[pools.postgres]
pool_mode = "transaction"
pool_size = 20
servers = [{ host = "127.0.0.1", port = $PG_PORT, role = "primary" }]
TOML
  } > "$1"
  "$PGCORRAL_BIN" check -c "$1" >/dev/null || die "pgcorral rejects $1: $("$PGCORRAL_BIN" check -c "$1" 2>&1 | head -3)"
}
pgb_conf() {   # DIR PORT AUTH(trust|scram)
  mkdir -p "$1"
  local auth=trust; [ "$3" = scram ] && auth=scram-sha-256
  cat > "$1/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$PG_PORT dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
listen_backlog = 4096
unix_socket_dir =
auth_type = $auth
auth_file = $1/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 20000
log_connections = $PGB_LOG_CONNECTIONS
log_disconnections = $PGB_LOG_CONNECTIONS
logfile = $1/pgbouncer.log
pidfile = $1/pgbouncer.pid
INI
  if [ "$3" != scram ]; then echo '"postgres" ""'
  elif [ "$PGB_SCRAM_SECRET" = plain ]; then echo '"bench_scram" "bench"'
  else  # PostgreSQL's own verifier: PgBouncer checks the client without PBKDF2 and logs in to
        # PostgreSQL with the ClientKey recovered from the client's proof (SCRAM pass-through)
    local v; v=$("$PGBIN/psql" -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc \
      "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench_scram'" "$BENCH_DB")
    [[ "$v" == SCRAM-SHA-256\$* ]] || die "no SCRAM verifier for bench_scram in pg_authid"
    printf '"bench_scram" "%s"\n' "$v"
  fi > "$1/userlist.txt"
  chown -R "$PG_OSUSER" "$1"
}
start_pgc() {  # NAME PORT AUTH -> LAST_PID
  pgc_conf "$OUT/$1.toml" "$2" "$3"
  "$PGCORRAL_BIN" -c "$OUT/$1.toml" </dev/null 2>"$OUT/$1.log" &
  LAST_PID=$!; PIDS+=("$LAST_PID")
  wait_listen "$2" || die "$1 is not listening on $2; see $OUT/$1.log"
}
start_pgb() {  # NAME PORT AUTH -> LAST_PID
  local d=$OUT/$1 i
  pgb_conf "$d" "$2" "$3"
  rm -f "$d/pgbouncer.pid"
  # runuser's pam_limits resets the soft fd limit to 1024: raise it again in the postgres shell
  runuser -u "$PG_OSUSER" -- sh -c 'ulimit -n "$1" && exec pgbouncer -d "$2"' sh "$(ulimit -n)" "$d/pgbouncer.ini" >&2 ||
    die "$1 did not start; see $d/pgbouncer.log"
  for ((i = 0; i < 50; i++)); do [ -s "$d/pgbouncer.pid" ] && break; sleep 0.1; done
  LAST_PID=$(cat "$d/pgbouncer.pid" 2>/dev/null); [ -n "$LAST_PID" ] || die "$1: no pidfile"
  PIDS+=("$LAST_PID")
  wait_listen "$2" || die "$1 is not listening on $2; see $d/pgbouncer.log"
  local lim; lim=$(awk '/Max open files/{print $4}' "/proc/$LAST_PID/limits")
  [ "$lim" -ge 20000 ] 2>/dev/null || say "warning: $1 has an fd limit of $lim"
}

# ---- measurements ----------------------------------------------------------------------------
rotate() { local r=$1; shift; local a=("$@") n=$# k; for ((k = 0; k < n; k++)); do echo "${a[$(((k + r - 1) % n))]}"; done; }
PGB_TSV=$OUT/pgbench.tsv; STORM_TSV=$OUT/storm.tsv; IDLE_TSV=$OUT/idle.tsv; BIG_TSV=$OUT/bigidle.tsv
HDR='round\tname\tscenario\tclients\ttps\tavg_lat_ms\tpooler_cpu_s\tpooler_cpu_us_per_tx\tstatus\n'
printf "$HDR" > "$PGB_TSV"; printf "$HDR" > "$STORM_TSV"
printf 'round\tname\tclients\tok\tfailed\talive\tconnect_s\trss_before_kb\trss_after_kb\tbytes_per_conn\terrors\n' > "$IDLE_TSV"
printf 'round\tname\tphase\tclients\ttps\tavg_lat_ms\tpooler_cpu_s\tpooler_cpu_us_per_tx\tstatus\tidle_n\tidle_ok\tidle_failed\tidle_alive\tidle_held_after\tbytes_per_conn\tidle_errors\n' > "$BIG_TSV"

run_all_round() {  # ROUND SCENARIOS TARGET... : one run-all.sh round, round column set to ROUND
  local r=$1 sc=$2; shift 2
  local tmp=$OUT/.runall.tsv; rm -f "$tmp"
  ROUNDS=1 SCENARIOS=$sc "$BENCH/run-all.sh" "$tmp" "$@" >&2
  tail -n +2 "$tmp" | awk -v r="$r" 'BEGIN{FS=OFS="\t"}{$1=r; print}' >> "$PGB_TSV"; rm -f "$tmp"
}
storm_run() {  # ROUND NAME PORT PID -> a storm.tsv line (pgbench-run.sh columns, scenario "storm")
  local r=$1 name=$2 port=$3 pid=${4:-} log t0 t1 rc tps lat ntx err status cpu us
  log=$LOGDIR/$name.storm.$(date +%H%M%S).log
  t0=$(cpu_ticks "$pid")
  PGPASSWORD=bench "$PGBIN/pgbench" -n -C -h 127.0.0.1 -p "$port" -U bench_scram -c "$STORM_CLIENTS" \
    -j "$THREADS" -T "$DURATION" -f "$SEL1" -M simple "$BENCH_DB" >"$log" 2>&1
  rc=$?
  t1=$(cpu_ticks "$pid")
  tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$log" | head -1)
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$log" | head -1)
  ntx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log" | head -1)
  if [ $rc -ne 0 ] || [ -z "$tps" ] || grep -q 'aborted in command\|Run was aborted' "$log"; then
    err=$(grep -m1 -E 'ERROR|FATAL|error|aborted' "$log" | tr '\t' ' ' | cut -c1-200)
    status="FAIL(rc=$rc): ${err:-see $log}"
  else status=ok; fi
  if [ "$t0" != - ] && [ "$t1" != - ]; then
    cpu=$(awk -v a="$t0" -v b="$t1" -v t="$TCK" 'BEGIN{printf "%.2f",(b-a)/t}')
    us=$(awk -v s="$cpu" -v n="${ntx:-0}" 'BEGIN{ if (n>0) printf "%.2f", s*1e6/n; else print "-"}')
  else cpu=-; us=-; fi
  printf '%s\t%s\tstorm\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$name" "$STORM_CLIENTS" "${tps:--}" "${lat:--}" "$cpu" "$us" "$status" |
    tee -a "$STORM_TSV" >&2
}
kv() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" "$2" | head -1; }
idle_errors() { grep '^  error x' "$1" | sed 's/^  error //' | tr '\t\n' '  ' | cut -c1-300; }
idle_run() {   # ROUND NAME PORT PID
  local r=$1 name=$2 port=$3 pid=$4 log=$LOGDIR/$2.idle.r$1.log
  say "idle: $IDLE_N clients -> $name (port $port, pid $pid)"
  python3 "$BENCH/idle-conns.py" "$port" "$IDLE_N" --pid "$pid" --hold 3 >"$log" 2>&1
  cat "$log" >&2
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$name" "$IDLE_N" "$(kv ok "$log")" "$(kv failed "$log")" \
    "$(kv alive_after_settle "$log")" "$(kv connect_time_s "$log")" "$(kv rss_before_kb "$log")" \
    "$(kv rss_after_kb "$log")" "$(kv bytes_per_idle_conn "$log")" "$(idle_errors "$log")" >> "$IDLE_TSV"
}
wait_drained() { local i; for ((i = 0; i < 120; i++)); do [ "$(conns_on "$1")" -lt 10 ] && return 0; sleep 0.5; done; say "warning: clients still connected to port $1"; }
bigidle_run() {  # ROUND NAME PORT PID
  local r=$1 name=$2 port=$3 pid=$4 line log=$LOGDIR/$2.bigidle.r$1.log i held=- ok=- failed=- alive=- bpc=- errs=
  say "bigidle: $name without idle clients"
  line=$(SCENARIOS=simple "$BENCH/pgbench-run.sh" "$name" "$port" "$pid" | cut -f2-)
  echo "$line" >&2
  printf '%s\t%s\twithout\t%s\t-\t-\t-\t-\t-\t-\t-\n' "$r" "$name" "$(echo "$line" | cut -f2-7)" >> "$BIG_TSV"
  say "bigidle: $name: opening $BIG_IDLE_N idle clients"
  python3 "$BENCH/idle-conns.py" "$port" "$BIG_IDLE_N" --pid "$pid" --hold $((DURATION + 600)) >"$log" 2>&1 &
  IDLE_PID=$!
  for ((i = 0; i < BIG_WAIT * 2; i++)); do
    grep -q '^pooler_pid=' "$log" && break
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.5
  done
  cat "$log" >&2
  if grep -q '^port=' "$log"; then
    ok=$(kv ok "$log"); failed=$(kv failed "$log"); alive=$(kv alive_after_settle "$log"); bpc=$(kv bytes_per_idle_conn "$log")
    errs=$(idle_errors "$log")
    say "bigidle: $name with $ok idle clients held"
    line=$(SCENARIOS=simple "$BENCH/pgbench-run.sh" "$name" "$port" "$pid" | cut -f2-)
    held=$(conns_on "$port")
    if ! kill -0 "$IDLE_PID" 2>/dev/null; then errs="${errs:+$errs; }idle-conns.py exited early"; fi
  else
    errs="idle clients not connected within ${BIG_WAIT}s: $(tail -3 "$log" | tr '\t\n' '  ' | cut -c1-200)"
    line=$(printf 'simple\t50\t-\t-\t-\t-\tFAIL: not run (idle clients did not connect)')
  fi
  echo "$line held_after=$held" >&2
  printf '%s\t%s\twith\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$name" "$(echo "$line" | cut -f2-7)" \
    "$BIG_IDLE_N" "$ok" "$failed" "$alive" "$held" "$bpc" "$errs" >> "$BIG_TSV"
  kill "$IDLE_PID" 2>/dev/null; wait "$IDLE_PID" 2>/dev/null; IDLE_PID=
  wait_drained "$port"; sleep 2
}

# ---- run -------------------------------------------------------------------------------------
start_pgb pgbouncer "$PGB_PORT" trust; PGB_PID=$LAST_PID
start_pgc pgcorral "$PGC_PORT" trust; PGC_PID=$LAST_PID
if has_phase storm; then
  start_pgb pgbouncer-scram "$PGB_SCRAM_PORT" scram; PGBS_PID=$LAST_PID
  start_pgc pgcorral-scram "$PGC_SCRAM_PORT" scram; PGCS_PID=$LAST_PID
fi
sleep 1
if [ "$WARMUP" -gt 0 ]; then   # fill both poolers' server pools and PostgreSQL's cache before measuring
  say "warmup: ${WARMUP}s select_only through each pooler"
  for port in $PGB_PORT $PGC_PORT; do
    "$PGBIN/pgbench" -n -S -h 127.0.0.1 -p "$port" -U "$BENCH_USER" -c 50 -j "$THREADS" -T "$WARMUP" "$BENCH_DB" \
      >"$LOGDIR/warmup.$port.log" 2>&1 || say "warning: warmup on port $port failed; see $LOGDIR/warmup.$port.log"
  done
  if has_phase storm; then
    for port in $PGB_SCRAM_PORT $PGC_SCRAM_PORT; do
      PGPASSWORD=bench "$PGBIN/pgbench" -n -h 127.0.0.1 -p "$port" -U bench_scram -c 20 -j "$THREADS" -T 1 -f "$SEL1" \
        "$BENCH_DB" >"$LOGDIR/warmup.$port.log" 2>&1 || say "warning: warmup on port $port failed; see $LOGDIR/warmup.$port.log"
    done
  fi
fi
{
  printf 'key\tvalue\n'
  printf 'date\t%s\nrounds\t%s\nduration_s\t%s\nthreads\t%s\nphases\t%s\nscenarios\t%s\n' "$(date -Is)" "$ROUNDS" "$DURATION" "$THREADS" "$PHASES" "$SCENARIOS"
  printf 'idle_n\t%s\nbig_idle_n\t%s\nstorm_clients\t%s\npgb_log_connections\t%s\n' "$IDLE_N" "$BIG_IDLE_N" "$STORM_CLIENTS" "$PGB_LOG_CONNECTIONS"
  printf 'pgb_scram_secret\t%s\n' "$PGB_SCRAM_SECRET"
  printf 'pgcorral\t%s (%s, %s threads)\n' "$("$PGCORRAL_BIN" --version)" "$PGCORRAL_BIN" "$(ls /proc/$PGC_PID/task | wc -l)"
  printf 'pgbouncer\t%s\n' "$(pgbouncer --version 2>&1 | head -1)"
  printf 'postgres\t%s\n' "$("$PGBIN/postgres" --version)"
  printf 'machine\t%s cores, %s, %s\n' "$(nproc)" "$(uname -r)" "$(awk '/MemTotal/{printf "%.0f GB RAM", $2/1048576}' /proc/meminfo)"
} > "$OUT/meta.tsv"
est=$((WARMUP * 2))
has_phase pgbench && est=$((est + $(echo $SCENARIOS | wc -w) * (2 + ${DIRECT_ALL:-0}) * DURATION))
has_phase latency && est=$((est + 3 * LATENCY_SPLIT * LATENCY_DURATION))
has_phase storm && est=$((est + 3 * DURATION))
has_phase idle && est=$((est + 30))
has_phase bigidle && est=$((est + 4 * DURATION + 40))
say "pgbouncer pid $PGB_PID :$PGB_PORT, pgcorral pid $PGC_PID :$PGC_PORT; results in $OUT"
say "$ROUNDS rounds x ~$((est / 60 + 1)) min (phases: $PHASES)"

for ((r = 1; r <= ROUNDS; r++)); do
  say "=== round $r/$ROUNDS"
  if has_phase pgbench; then
    T=(pgbouncer:$PGB_PORT:$PGB_PID pgcorral:$PGC_PORT:$PGC_PID)
    [ "${DIRECT_ALL:-0}" = 1 ] && T=(direct:$PG_PORT: "${T[@]}")
    mapfile -t T < <(rotate "$r" "${T[@]}")
    run_all_round "$r" "$SCENARIOS" "${T[@]}"
  fi
  if has_phase latency; then
    # LATENCY_SPLIT short runs per target instead of one long one, interleaved, so that a slow
    # drift of the machine (it moves added latency by several µs) falls on all three alike.
    for ((s = 0; s < LATENCY_SPLIT; s++)); do
      mapfile -t T < <(rotate "$((r + s))" direct:$PG_PORT: pgbouncer:$PGB_PORT:$PGB_PID pgcorral:$PGC_PORT:$PGC_PID)
      DURATION=$LATENCY_DURATION run_all_round "$r" latency1 "${T[@]}"
    done
  fi
  if has_phase storm; then
    mapfile -t T < <(rotate "$r" direct:$PG_PORT: pgbouncer:$PGB_SCRAM_PORT:$PGBS_PID pgcorral:$PGC_SCRAM_PORT:$PGCS_PID)
    for t in "${T[@]}"; do IFS=: read -r name port pid <<<"$t"; storm_run "$r" "$name" "$port" "$pid"; done
  fi
  if has_phase idle; then
    start_pgb pgbouncer-idle "$PGB_IDLE_PORT" trust; PGBI_PID=$LAST_PID
    start_pgc pgcorral-idle "$PGC_IDLE_PORT" trust; PGCI_PID=$LAST_PID
    sleep 1
    mapfile -t T < <(rotate "$r" pgbouncer:$PGB_IDLE_PORT:$PGBI_PID pgcorral:$PGC_IDLE_PORT:$PGCI_PID)
    for t in "${T[@]}"; do IFS=: read -r name port pid <<<"$t"; idle_run "$r" "$name" "$port" "$pid"; wait_drained "$port"; done
    stop_pid "$PGBI_PID"; stop_pid "$PGCI_PID"
  fi
  if has_phase bigidle; then
    mapfile -t T < <(rotate "$r" pgbouncer:$PGB_PORT:$PGB_PID pgcorral:$PGC_PORT:$PGC_PID)
    for t in "${T[@]}"; do IFS=: read -r name port pid <<<"$t"; bigidle_run "$r" "$name" "$port" "$pid"; done
  fi
done

for p in "$PGB_PID" "$PGC_PID" "${PGBS_PID:-}" "${PGCS_PID:-}"; do
  [ -n "$p" ] && { [ -n "$(proc_state "$p")" ] || say "warning: pooler pid $p is gone (crashed?)"; }
done
"$BENCH/summarize.py" "$PGB_TSV" "$STORM_TSV" > "$OUT/summary.tsv" 2>&1
python3 "$ROOT/benches/perf_table.py" "$OUT" > "$OUT/table.md"
cat "$OUT/table.md"
say "raw results: $OUT ; PostgreSQL left running on 127.0.0.1:$PG_PORT (stop: $BENCH/pg-down.sh)"
