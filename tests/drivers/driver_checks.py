"""What the driver scripts (psycopg3_check.py, asyncpg_check.py) share: result checks, the
command line, and the report of failures and of the server connections seen."""

import argparse
import collections
import re
import sys
import traceback


class CheckFailed(Exception):
    """A result that differs from what PostgreSQL must have answered."""


def check(what, got, want):
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


def error_key(e):
    """What groups equal failures of different connections: the exception type and the first line
    of its message, with the numbers of driver statement names (_pg3_12, __asyncpg_stmt_1f__)
    replaced by N."""
    first = (str(e).splitlines() or [""])[0]
    first = re.sub(r"(_pg3_|__asyncpg_stmt_)[0-9a-f]+", r"\1N", first)
    return f"{type(e).__module__}.{type(e).__name__}: {first}"


def parse_args(doc):
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=["session", "transaction"], required=True)
    p.add_argument("--pool-size", type=int, required=True)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--iterations", type=int, default=200)
    return p.parse_args()


def report_failures(failed, total):
    """Prints failed connections, grouped by error, with one traceback per group.
    `failed` holds (worker, exception) pairs; a worker has `wid` and `at`."""
    by_message = collections.OrderedDict()
    for wk, e in failed:
        by_message.setdefault(error_key(e), []).append((wk, e))
    print(f"FAILED: {len(failed)} of {total} connections failed", file=sys.stderr)
    for msg, items in by_message.items():
        where = ", ".join(f"worker {wk.wid} at {wk.at}" for wk, _ in items)
        print(f"\n--- {len(items)} connection(s) ({where}): {msg}", file=sys.stderr)
        e = items[0][1]
        if getattr(e, "sqlstate", None):
            print(f"sqlstate: {e.sqlstate}", file=sys.stderr)
        traceback.print_exception(e, file=sys.stderr)


def check_server_connections(args, workers):
    """The pooling seen through backend pids (each worker's `pids`): one per connection in
    session mode, at most pool_size in all. Returns the set of pids."""
    all_pids = set().union(*(wk.pids for wk in workers))
    if args.mode == "session":
        for wk in workers:
            if len(wk.pids) != 1:
                raise CheckFailed(f"session mode: connection {wk.wid} saw backend pids {sorted(wk.pids)}")
    if len(all_pids) > args.pool_size:
        raise CheckFailed(
            f"{len(all_pids)} distinct server connections (backend pids) seen, pool_size is {args.pool_size}"
        )
    return all_pids
