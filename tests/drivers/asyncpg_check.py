"""asyncpg through pgcorral: concurrent connections with asyncpg's statement cache.

Run by tests/drivers.rs in the venv of tests/drivers/requirements.txt:

    python asyncpg_check.py --port PORT --mode transaction|session --pool-size N

Opens --connections (8) connections with asyncpg's defaults (statement_cache_size=100: every
query is prepared as a named statement, __asyncpg_stmt_N__, and reused from the cache) and runs
--iterations (200) rounds on each concurrently (asyncio.gather): fetch, fetchrow, fetchval and
execute with arguments of many types (int, text, numeric, timestamptz, bytea, jsonb through a
codec, arrays, NULL, bool, float8, uuid, date, interval), INSERT ... RETURNING, executemany, a
committed and a rolled back transaction, errors followed by more statements, conn.prepare() with
repeated fetches of the prepared statement, copy_records_to_table and copy_from_query. Every
result is checked; at the end the rows in the table are counted per connection.

Backend pids seen through pg_backend_pid() show the pooling: in session mode each connection
keeps one server connection (and its cached statements are visible in pg_prepared_statements);
in transaction mode all connections together use at most --pool-size server connections.

Exits 0 after printing a summary; on any failure prints what went wrong (with a traceback per
distinct error) and exits 1.
"""

import asyncio
import datetime
import decimal
import json
import sys
import time
import traceback
import uuid

import asyncpg

from driver_checks import CheckFailed, check, check_server_connections, parse_args, report_failures

TABLE = "drv_asyncpg_items"
COLUMNS = ["worker", "i", "kind", "payload", "amount"]
UTC = datetime.timezone.utc


class RollMeBack(Exception):
    """Raised inside a transaction block to roll it back."""


async def connect(args, name):
    conn = await asyncpg.connect(
        host="127.0.0.1",
        port=args.port,
        user="postgres",
        database="postgres",
        timeout=10,
        command_timeout=60,
        server_settings={"application_name": name},
    )
    # A codec for jsonb: asyncpg introspects the type with a query of its own.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return conn


class Worker:
    """One connection and its loop of operations."""

    def __init__(self, args, wid):
        self.args = args
        self.wid = wid
        self.ops = 0
        self.pids = set()
        self.copied = 0
        self.conn = None
        self.at = "connect"

    async def run(self):
        self.conn = await connect(self.args, f"asyncpg-check-{self.wid}")
        try:
            stmt = await self.conn.prepare("SELECT $1::int * $2::int AS product, $3::text AS label")
            for i in range(self.args.iterations):
                self.at = f"iteration {i}"
                await self.iteration(i, stmt)
            self.at = "end"
            if self.args.mode == "session":
                await self.check_prepared_on_server()
        finally:
            await self.conn.close(timeout=10)

    async def iteration(self, i, stmt):
        w = self.wid
        conn = self.conn

        self.ops += 1
        self.pids.add(await conn.fetchval("SELECT pg_backend_pid()"))

        # fetchrow with arguments of many types.
        n = decimal.Decimal("12345.6789") + i
        ts = datetime.datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=UTC) + datetime.timedelta(minutes=i)
        b = bytes(range(256)) * (1 + i % 3) + bytes([w, i % 256])
        doc = {"worker": w, "tags": ["a", "b", i], "nested": {"none": None, "t": True}}
        u = uuid.UUID(int=(w << 64) | i)
        s = f"w{w} i{i} 'quoted' ünïcødé ✓"
        self.ops += 1
        row = await conn.fetchrow(
            "SELECT $1::int4 + 1 AS i4, $2::int8 * 2 AS i8, $3::text || '!' AS t, $4::numeric * 2 AS n, "
            "$5::timestamptz + make_interval(days => $1) AS ts, $6::bytea AS b, "
            "$7::jsonb || jsonb_build_object('i', $1::int) AS j, $8::int[] || $1::int AS arr, "
            "$9::text[] AS tarr, $10::text AS nul, $11::bool AS flag, $12::float8 / 2 AS f, $13::uuid AS u, "
            "$14::date + 1 AS d, $15::interval * 2 AS iv",
            i,
            i * 1_000_000_007,
            s,
            n,
            ts,
            b,
            doc,
            [1, 2, w],
            ["x", None, "y z"],
            None,
            i % 2 == 0,
            1.5,
            u,
            datetime.date(2024, 12, 31),
            datetime.timedelta(hours=1, microseconds=i),
        )
        check(
            "fetchrow of many types",
            dict(row),
            {
                "i4": i + 1,
                "i8": i * 2_000_000_014,
                "t": s + "!",
                "n": n * 2,
                "ts": ts + datetime.timedelta(days=i),
                "b": b,
                "j": {**doc, "i": i},
                "arr": [1, 2, w, i],
                "tarr": ["x", None, "y z"],
                "nul": None,
                "flag": i % 2 == 0,
                "f": 0.75,
                "u": u,
                "d": datetime.date(2025, 1, 1),
                "iv": datetime.timedelta(hours=2, microseconds=2 * i),
            },
        )

        # fetch of several rows.
        self.ops += 1
        rows = await conn.fetch("SELECT g, g * $2::int AS m FROM generate_series(1, $1::int) g ORDER BY g", 5 + i % 4, w)
        check("fetch", [tuple(r) for r in rows], [(g, g * w) for g in range(1, 6 + i % 4)])

        # fetchval with NULL.
        self.ops += 1
        check("fetchval null", await conn.fetchval("SELECT $1::text IS NULL", None), True)

        # execute with arguments, and INSERT ... RETURNING.
        payload = f"one {w}/{i}"
        self.ops += 1
        status = await conn.execute(
            f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES ($1, $2, 'one', $3, $4)",
            w,
            i,
            payload,
            decimal.Decimal(i) / 4,
        )
        check("execute status", status, "INSERT 0 1")
        self.ops += 1
        row = await conn.fetchrow(
            f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES ($1, $2, 'ret', $3, $4) "
            "RETURNING worker, i, payload, amount",
            w,
            i,
            payload,
            decimal.Decimal("0.5"),
        )
        check("insert returning", tuple(row), (w, i, payload, decimal.Decimal("0.5")))

        # executemany.
        self.ops += 1
        await conn.executemany(
            f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES ($1, $2, 'many', $3, $4)",
            [(w, i, f"many {k}", decimal.Decimal(k)) for k in range(3)],
        )

        # A committed transaction of two statements.
        async with conn.transaction():
            self.ops += 2
            tx_id = await conn.fetchval(
                f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES ($1, $2, 'tx', 'tx', 1) RETURNING id",
                w,
                i,
            )
            await conn.execute(f"UPDATE {TABLE} SET payload = payload || $1 WHERE id = $2", "+", tx_id)
        self.ops += 1
        check("committed tx", await conn.fetchval(f"SELECT payload FROM {TABLE} WHERE id = $1", tx_id), "tx+")

        # A rolled back transaction.
        try:
            async with conn.transaction():
                self.ops += 2
                rb_id = await conn.fetchval(
                    f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES ($1, $2, 'rolledback', 'x', 1) "
                    "RETURNING id",
                    w,
                    i,
                )
                check(
                    "inside rolled back tx",
                    await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE id = $1", rb_id),
                    1,
                )
                raise RollMeBack()
        except RollMeBack:
            pass
        self.ops += 1
        check("rolled back tx", await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE id = $1", rb_id), 0)

        # An error, then more statements on the same connection.
        self.ops += 1
        try:
            await conn.fetchval("SELECT 1 / $1::int", 0)
        except asyncpg.exceptions.DivisionByZeroError as e:
            check("division by zero sqlstate", e.sqlstate, "22012")
        else:
            raise CheckFailed("SELECT 1 / 0 did not fail")
        self.ops += 1
        check("after error", await conn.fetchval("SELECT $1::int * 3", i), i * 3)

        # An error inside a transaction: it rolls back, the connection goes on.
        try:
            async with conn.transaction():
                self.ops += 2
                await conn.execute(
                    f"INSERT INTO {TABLE} (worker, i, kind, payload, amount) VALUES ($1, $2, 'rolledback', 'e', 1)",
                    w,
                    i,
                )
                await conn.fetchval("SELECT 1 / ($1::int - $1::int)", i)
        except asyncpg.exceptions.DivisionByZeroError as e:
            check("division by zero in tx sqlstate", e.sqlstate, "22012")
        else:
            raise CheckFailed("SELECT 1 / 0 in a transaction did not fail")
        check("in transaction after failed tx", conn.is_in_transaction(), False)
        self.ops += 1
        check("after failed tx", await conn.fetchval("SELECT $1::text", "still here"), "still here")

        # The statement prepared with conn.prepare(), used again and again.
        self.ops += 3
        check("prepared fetch", [tuple(r) for r in await stmt.fetch(i, w, "p")], [(i * w, "p")])
        check("prepared fetchrow", tuple(await stmt.fetchrow(w, 7, "q")), (w * 7, "q"))
        check("prepared fetchval", await stmt.fetchval(i, 2, None), i * 2)

        # COPY FROM STDIN (binary) of records, and COPY TO STDOUT of a query with an argument.
        if i % 10 == 0:
            records = [(w, i, "copy", f"copy {w}/{i}/{k}", decimal.Decimal(k) / 8) for k in range(5)]
            self.ops += 1
            status = await conn.copy_records_to_table(TABLE, records=records, columns=COLUMNS)
            check("copy_records_to_table status", status, "COPY 5")
            self.copied += 5

            chunks = []

            async def sink(data):
                chunks.append(data)

            self.ops += 1
            status = await conn.copy_from_query(
                f"SELECT payload, amount FROM {TABLE} WHERE worker = $1 AND kind = 'copy' ORDER BY id",
                w,
                output=sink,
                format="csv",
            )
            check("copy_from_query status", status, f"COPY {self.copied}")
            lines = b"".join(chunks).decode().splitlines()
            check("copy_from_query rows", len(lines), self.copied)
            check("copy_from_query last row", lines[-1], f"copy {w}/{i}/4,0.5")

    async def check_prepared_on_server(self):
        """Session mode: this connection's server has asyncpg's named statements prepared."""
        self.ops += 1
        n = await self.conn.fetchval(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE '\\_\\_asyncpg\\_stmt\\_%'"
        )
        if n < 10:
            raise CheckFailed(f"pg_prepared_statements has {n} __asyncpg_stmt_ statements, want >= 10")


async def setup(args):
    conn = await connect(args, "asyncpg-check-setup")
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await conn.execute(
            f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, worker int NOT NULL, i int NOT NULL, "
            "kind text NOT NULL, payload text, amount numeric)"
        )
    finally:
        await conn.close(timeout=10)


async def final_check(args):
    """Counts the rows each connection left, by kind."""
    conn = await connect(args, "asyncpg-check-final")
    try:
        rows = await conn.fetch(f"SELECT worker, kind, count(*) AS n FROM {TABLE} GROUP BY 1, 2 ORDER BY 1, 2")
        got = {(r["worker"], r["kind"]): r["n"] for r in rows}
        it = args.iterations
        per_worker = {"one": it, "ret": it, "many": 3 * it, "tx": it, "copy": 5 * len(range(0, it, 10))}
        want = {(w, k): n for w in range(args.connections) for k, n in per_worker.items()}
        check("rows per connection and kind", got, want)
        bad = await conn.fetchval(f"SELECT count(*) FROM {TABLE} WHERE kind = 'tx' AND payload <> 'tx+'")
        check("committed transactions with both statements", bad, 0)
    finally:
        await conn.close(timeout=10)


async def amain(args):
    start = time.monotonic()
    print(f"asyncpg {asyncpg.__version__}", flush=True)
    await setup(args)
    workers = [Worker(args, w) for w in range(args.connections)]
    results = await asyncio.gather(*(wk.run() for wk in workers), return_exceptions=True)

    failed = [(wk, r) for wk, r in zip(workers, results) if isinstance(r, BaseException)]
    if failed:
        report_failures(failed, len(workers))
        return 1

    try:
        await final_check(args)
        all_pids = check_server_connections(args, workers)
    except Exception as e:  # noqa: BLE001 - reported
        print(f"FAILED final check: {type(e).__name__}: {e}", file=sys.stderr)
        traceback.print_exc()
        return 1

    ops = sum(wk.ops for wk in workers)
    print(
        f"OK: {ops} operations on {args.connections} connections x {args.iterations} iterations "
        f"({args.mode} mode, statement_cache_size=100) over {len(all_pids)} server connection(s) "
        f"(pool_size {args.pool_size}) in {time.monotonic() - start:.1f} s"
    )
    return 0


def main():
    args = parse_args(__doc__)
    sys.exit(asyncio.run(amain(args)))


if __name__ == "__main__":
    main()
