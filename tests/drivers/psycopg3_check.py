"""psycopg 3 through pgcorral: concurrent connections that prepare every statement server side.

Run by tests/drivers.rs in the venv of tests/drivers/requirements.txt:

    python psycopg3_check.py --port PORT --mode transaction|session --pool-size N

Opens --connections (8) connections with prepare_threshold=0, so psycopg prepares each
statement with a named statement (_pg3_N) before its first execution, and runs --iterations
(200) rounds on each, all at once on threads: parameterised SELECTs of int, text, numeric,
timestamptz, bytea, jsonb, arrays and NULL (text and binary format), INSERT ... RETURNING,
executemany, a committed and a rolled back transaction, errors followed by more statements on
the same connection, execute(prepare=True) and pipeline mode. Every result is checked; at the
end the rows in the table are counted per connection.

Backend pids seen through pg_backend_pid() show the pooling: in session mode each connection
keeps one server connection (and its prepared statements are visible in
pg_prepared_statements); in transaction mode all connections together use at most --pool-size
server connections.

Exits 0 after printing a summary; on any failure prints what went wrong (with a traceback per
distinct error) and exits 1.
"""

import datetime
import decimal
import sys
import threading
import time
import traceback

import psycopg
from psycopg.types.json import Jsonb

from driver_checks import CheckFailed, check, check_server_connections, parse_args, report_failures

TABLE = "drv_psycopg_items"
UTC = datetime.timezone.utc


class Worker:
    """One connection and its loop of operations."""

    def __init__(self, args, wid):
        self.args = args
        self.wid = wid
        self.ops = 0
        self.pids = set()
        self.error = None
        self.conn = None
        self.committed_ids = []
        self.at = "connect"

    def connect(self):
        self.conn = psycopg.connect(
            host="127.0.0.1",
            port=self.args.port,
            user="postgres",
            dbname="postgres",
            connect_timeout=10,
            application_name=f"psycopg3-check-{self.wid}",
            autocommit=True,
            prepare_threshold=0,
        )
        check("prepare_threshold", self.conn.prepare_threshold, 0)

    def one(self, query, params=None, *, binary=False):
        """Executes through a cursor and returns the single row."""
        self.ops += 1
        with self.conn.cursor(binary=binary) as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
        if len(rows) != 1:
            raise CheckFailed(f"{query!r}: {len(rows)} rows, want 1")
        return rows[0]

    def run(self):
        try:
            self.connect()
            for i in range(self.args.iterations):
                self.at = f"iteration {i}"
                self.iteration(i)
            self.at = "end"
            if self.args.mode == "session":
                self.check_prepared_on_server()
        except BaseException as e:  # noqa: BLE001 - reported by main
            self.error = e
        finally:
            if self.conn is not None:
                try:
                    self.conn.close()
                except Exception:  # noqa: BLE001 - closing after an error
                    pass

    def iteration(self, i):
        w = self.wid
        conn = self.conn

        (pid,) = self.one("SELECT pg_backend_pid()")
        self.pids.add(pid)

        # Integers.
        row = self.one("SELECT %s::int4 + 1, %s::int8 * 2", (i, i * 1_000_000_007))
        check("int4/int8", row, (i + 1, i * 2_000_000_014))

        # Text, including non-ASCII and quotes.
        s = f"w{w} i{i} 'quoted' ünïcødé ✓"
        row = self.one("SELECT %s::text || %s::text, length(%s::text)", (s, "!", s))
        check("text", row, (s + "!", len(s)))

        # Numeric.
        n = decimal.Decimal("12345.6789") + i
        row = self.one("SELECT %s::numeric * 2, %s::numeric(20,3)", (n, decimal.Decimal("1.0005")))
        check("numeric", row, (n * 2, decimal.Decimal("1.001")))

        # timestamptz (aware datetimes compare across time zones).
        ts = datetime.datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=UTC) + datetime.timedelta(minutes=i)
        row = self.one("SELECT %s::timestamptz + make_interval(days => %s)", (ts, w))
        check("timestamptz", row, (ts + datetime.timedelta(days=w),))

        # bytea with every byte value.
        b = bytes(range(256)) * (1 + i % 3) + bytes([w, i % 256])
        row = self.one("SELECT %s::bytea, length(%s::bytea)", (b, b))
        check("bytea", (bytes(row[0]), row[1]), (b, len(b)))

        # jsonb.
        doc = {"worker": w, "tags": ["a", "b", i], "nested": {"none": None, "t": True}}
        row = self.one("SELECT %s::jsonb || jsonb_build_object('i', %s::int)", (Jsonb(doc), i))
        check("jsonb", row, ({**doc, "i": i},))

        # Arrays.
        row = self.one(
            "SELECT %s::int[] || %s::int, %s::text[], array_length(%s::int[], 1)",
            ([1, 2, i], w, ["x", None, "y z"], [1, 2, i]),
        )
        check("arrays", row, ([1, 2, i, w], ["x", None, "y z"], 3))

        # NULLs.
        row = self.one("SELECT %s::text IS NULL, %s::int, coalesce(%s::text, 'dflt')", (None, None, None))
        check("nulls", row, (True, None, "dflt"))

        # Binary format for parameters and results.
        row = self.one(
            "SELECT %s::int8 - 1, %s::bytea, %s::timestamptz, %s::float8",
            (i, b"\x00\x01\xff", ts, 0.25),
            binary=True,
        )
        check("binary format", row, (i - 1, b"\x00\x01\xff", ts, 0.25))

        # INSERT ... RETURNING.
        payload = f"one {w}/{i}"
        row = self.one(
            f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES (%s, %s, 'one', %s, %s) "
            "RETURNING worker, i, payload, amount",
            (w, i, payload, decimal.Decimal(i) / 4),
        )
        check("insert returning", row, (w, i, payload, decimal.Decimal(i) / 4))

        # executemany, plain and with RETURNING.
        self.ops += 1
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES (%s, %s, 'many', %s, %s)",
                [(w, i, f"many {k}", k) for k in range(3)],
            )
        self.ops += 1
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES (%s, %s, 'many-ret', %s, %s) "
                "RETURNING payload",
                [(w, i, f"ret {k}", k) for k in range(2)],
                returning=True,
            )
            got = []
            while True:
                got.extend(r[0] for r in cur.fetchall())
                if not cur.nextset():
                    break
        check("executemany returning", got, ["ret 0", "ret 1"])

        # A committed transaction of two statements.
        with conn.transaction():
            (tx_id,) = self.one(
                f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES (%s, %s, 'tx', 'tx', 1) RETURNING id",
                (w, i),
            )
            self.one(f"UPDATE {TABLE} SET payload = payload || %s WHERE id = %s RETURNING id", ("+", tx_id))
        self.committed_ids.append(tx_id)
        check("committed tx", self.one(f"SELECT payload FROM {TABLE} WHERE id = %s", (tx_id,)), ("tx+",))

        # A rolled back transaction.
        with conn.transaction() as tx:
            (rb_id,) = self.one(
                f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES (%s, %s, 'rolledback', 'x', 1) "
                "RETURNING id",
                (w, i),
            )
            check("inside rolled back tx", self.one(f"SELECT count(*) FROM {TABLE} WHERE id = %s", (rb_id,)), (1,))
            raise psycopg.Rollback(tx)
        check("rolled back tx", self.one(f"SELECT count(*) FROM {TABLE} WHERE id = %s", (rb_id,)), (0,))

        # An error, then more statements on the same connection.
        self.ops += 1
        try:
            conn.execute("SELECT 1 / %s::int", (0,))
        except psycopg.errors.DivisionByZero as e:
            check("division by zero sqlstate", e.sqlstate, "22012")
        else:
            raise CheckFailed("SELECT 1 / 0 did not fail")
        check("after error", self.one("SELECT %s::int * 3", (i,)), (i * 3,))

        # An error inside a transaction: the transaction rolls back, the connection goes on.
        self.ops += 1
        try:
            with conn.transaction():
                self.one(
                    f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES (%s, %s, 'rolledback', 'e', 1)"
                    " RETURNING id",
                    (w, i),
                )
                conn.execute("SELECT 1 / (%s::int - %s::int)", (i, i))
        except psycopg.errors.DivisionByZero as e:
            check("division by zero in tx sqlstate", e.sqlstate, "22012")
        else:
            raise CheckFailed("SELECT 1 / 0 in a transaction did not fail")
        check("status after failed tx", conn.info.transaction_status, psycopg.pq.TransactionStatus.IDLE)
        check("after failed tx", self.one("SELECT %s::text", ("still here",)), ("still here",))

        # Connection.execute with prepare=True.
        self.ops += 1
        row = conn.execute("SELECT %s::int + %s::int, %s::text", (i, w, "prepared"), prepare=True).fetchone()
        check("execute(prepare=True)", row, (i + w, "prepared"))

        # Pipeline mode: several statements sent before any result is read.
        if psycopg.capabilities.has_pipeline():
            self.ops += 4
            with conn.pipeline():
                c1 = conn.execute("SELECT %s::int * 10", (i,))
                c2 = conn.execute("SELECT %s::text || '-piped'", (payload,))
                c3 = conn.execute(
                    f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES (%s, %s, 'piped', %s, 2) "
                    "RETURNING payload",
                    (w, i, payload),
                )
                c4 = conn.execute("SELECT %s::int[]", ([i, w],))
            check("pipeline 1", c1.fetchone(), (i * 10,))
            check("pipeline 2", c2.fetchone(), (payload + "-piped",))
            check("pipeline 3", c3.fetchone(), (payload,))
            check("pipeline 4", c4.fetchone(), ([i, w],))

    def check_prepared_on_server(self):
        """Session mode: this connection's server has psycopg's named statements prepared.

        psycopg sends DEALLOCATE ALL after each ROLLBACK, so only the statements prepared since the
        last rolled back transaction of the iteration are still there (7 of them).
        """
        (n,) = self.one("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE '\\_pg3\\_%'")
        if n < 5:
            raise CheckFailed(f"pg_prepared_statements has {n} _pg3_ statements, want >= 5")


def setup(args):
    with psycopg.connect(
        host="127.0.0.1", port=args.port, user="postgres", dbname="postgres", connect_timeout=10, autocommit=True
    ) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, worker int NOT NULL, i int NOT NULL, "
            "kind text NOT NULL, payload text, amount numeric)"
        )


def final_check(args):
    """Counts the rows each connection left, by kind."""
    with psycopg.connect(
        host="127.0.0.1", port=args.port, user="postgres", dbname="postgres", connect_timeout=10, autocommit=True
    ) as conn:
        rows = conn.execute(f"SELECT worker, kind, count(*) FROM {TABLE} GROUP BY 1, 2 ORDER BY 1, 2").fetchall()
        got = {(w, k): n for w, k, n in rows}
        it = args.iterations
        per_worker = {"one": it, "many": 3 * it, "many-ret": 2 * it, "tx": it}
        if psycopg.capabilities.has_pipeline():
            per_worker["piped"] = it
        want = {(w, k): n for w in range(args.connections) for k, n in per_worker.items()}
        check("rows per connection and kind", got, want)
        (bad,) = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE kind = 'tx' AND payload <> 'tx+'").fetchone()
        check("committed transactions with both statements", bad, 0)


def main():
    args = parse_args(__doc__)

    start = time.monotonic()
    print(f"psycopg {psycopg.__version__} (libpq {psycopg.pq.version()}, {psycopg.pq.__impl__})", flush=True)
    setup(args)
    workers = [Worker(args, w) for w in range(args.connections)]
    threads = [threading.Thread(target=wk.run, name=f"worker-{wk.wid}") for wk in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    failed = [(wk, wk.error) for wk in workers if wk.error is not None]
    if failed:
        report_failures(failed, len(workers))
        sys.exit(1)

    try:
        final_check(args)
        all_pids = check_server_connections(args, workers)
    except Exception as e:  # noqa: BLE001 - reported
        print(f"FAILED final check: {type(e).__name__}: {e}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)

    ops = sum(wk.ops for wk in workers)
    print(
        f"OK: {ops} operations on {args.connections} connections x {args.iterations} iterations "
        f"({args.mode} mode, prepare_threshold=0) over {len(all_pids)} server connection(s) "
        f"(pool_size {args.pool_size}) in {time.monotonic() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
