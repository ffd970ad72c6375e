#!/usr/bin/env python3
"""Usage: perf_table.py RUN_DIR

Builds the pgcorral-vs-PgBouncer performance target table (Markdown) from the TSVs that
benches/performance.sh writes into RUN_DIR: pgbench.tsv and storm.tsv (run-all.sh columns with
a round column), idle.tsv, bigidle.tsv and meta.tsv. Values are medians over rounds; runs that
failed are left out of the medians and counted. Python 3 stdlib only.
"""
import csv
import os
import statistics
import sys

PGB, PGC, DIRECT = "pgbouncer", "pgcorral", "direct"


def read(run_dir, name):
    path = os.path.join(run_dir, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


class Runs:
    """pgbench-style rows grouped by (scenario, name)."""

    def __init__(self, rows):
        self.rows = rows

    def get(self, scenario, name):
        return [r for r in self.rows if r["scenario"] == scenario and r["name"] == name]

    def ok(self, scenario, name):
        return [r for r in self.get(scenario, name) if r["status"] == "ok"]

    def failed(self, scenario, name):
        return [r for r in self.get(scenario, name) if r["status"] != "ok"]

    def median(self, scenario, name, col):
        return med(num(r[col]) for r in self.ok(scenario, name))


def main():
    run_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    meta = {r["key"]: r["value"] for r in read(run_dir, "meta.tsv")}
    pg = Runs(read(run_dir, "pgbench.tsv"))
    storm = Runs(read(run_dir, "storm.tsv"))
    idle = read(run_dir, "idle.tsv")
    big = read(run_dir, "bigidle.tsv")
    failures = []  # (name, scenario, round, status) of every failed run, for the notes
    for r in pg.rows + storm.rows:
        if r["status"] != "ok":
            failures.append((r["name"], r["scenario"], r["round"], r["status"]))

    rows = []  # scenario, metric, pgbouncer, pgcorral, ratio, target, met
    met_count = [0, 0]

    def verdict(ok, why=""):
        if ok is None:
            return "n/a" + (f" ({why})" if why else "")
        met_count[1] += 1
        met_count[0] += bool(ok)
        return ("**yes**" if ok else "**NO**") + (f" ({why})" if why else "")

    def fail_note(runs, scenario, name):
        f, n = len(runs.failed(scenario, name)), len(runs.get(scenario, name))
        return f"{f}/{n} runs failed" if f else ""

    def cell(runs, scenario, name, value, digits):
        """Median, or FAIL when every run failed; '(k/n failed)' appended when some did."""
        n, f = len(runs.get(scenario, name)), len(runs.failed(scenario, name))
        if n == 0:
            return "not run"
        if f == n:
            return "FAIL"
        return fmt(value, digits) + (f" ({f}/{n} failed)" if f else "")

    def ratio_row(runs, scenario, label, metric, col, digits, op, bound):
        b, c = runs.median(scenario, PGB, col), runs.median(scenario, PGC, col)
        q = ratio(c, b)
        bad = fail_note(runs, scenario, PGC)
        if q is None:
            ok = None
        else:
            ok = (q <= bound if op == "<=" else q >= bound) and not bad
        rows.append((label, metric, cell(runs, scenario, PGB, b, digits), cell(runs, scenario, PGC, c, digits),
                     fmt(q, 2), f"ratio {'≤' if op == '<=' else '≥'} {bound}", verdict(ok, bad)))

    # CPU per transaction and throughput
    for sc in ("simple", "extended"):
        if pg.get(sc, PGC) or pg.get(sc, PGB):
            ratio_row(pg, sc, f"`{sc}`", "pooler CPU µs / transaction", "pooler_cpu_us_per_tx", 2, "<=", 0.85)
    for sc, label in (("simple", "`simple`"), ("extended", "`extended`"), ("select_only", "`select_only`"),
                      ("many_clients", "`many_clients` (200 clients)")):
        if pg.get(sc, PGC) or pg.get(sc, PGB):
            ratio_row(pg, sc, label, "tps", "tps", 0, ">=", 1.05)

    # prepared: PgBouncer 1.18 is expected to fail; pgcorral must work and keep up with its own simple
    if pg.get("prepared", PGC) or pg.get("prepared", PGB):
        c = pg.median("prepared", PGC, "tps")
        simple = pg.median("simple", PGC, "tps")
        nf = len(pg.failed("prepared", PGC))
        ok = None if c is None or simple is None else (nf == 0 and c >= 0.9 * simple)
        why = f"{nf} failed runs" if nf else (f"{c / simple:.2f} × simple" if ok is not None else "")
        rows.append(("`prepared`", "tps, 0 failures", cell(pg, "prepared", PGB, pg.median("prepared", PGB, "tps"), 0),
                     cell(pg, "prepared", PGC, c, 0), "-",
                     f"pgcorral 0 failures, tps ≥ 0.9 × its `simple` ({fmt(simple and 0.9 * simple)})",
                     verdict(ok, why)))

    # latency1: latency added over direct, paired per round. One client with no think time
    # waits 1/tps per transaction; pgbench prints tps to 6 decimals but its latency average only
    # to the µs, the size of the difference measured here, so the latency is taken from tps.
    # A round may hold several short runs per target (LATENCY_SPLIT, equally long): their
    # latency is 1 / their mean tps.
    if pg.get("latency1", PGC):
        def per_round(name):
            tps = {}
            for r in pg.ok("latency1", name):
                t = num(r["tps"])
                if t:
                    tps.setdefault(r["round"], []).append(t)
            return {k: 1000.0 * len(v) / sum(v) for k, v in tps.items()}

        direct = per_round(DIRECT)

        def added(name):
            lat = per_round(name)
            return med((lat[k] - direct[k]) * 1000 for k in lat if k in direct)
        b, c = added(PGB), added(PGC)
        q = ratio(c, b) if b is not None and b > 0 else None
        bad = fail_note(pg, "latency1", PGC)
        ok = None if q is None else (q <= 1.0 and not bad)
        dl = med(direct.values())
        rows.append(("`latency1` (1 client)", f"µs added over direct (direct {fmt(dl and dl * 1000, 1)} µs)",
                     fmt(b, 1), fmt(c, 1), fmt(q, 2), "ratio ≤ 1.0", verdict(ok, bad)))

    # idle clients: RSS bytes per idle authenticated client
    if idle:
        def idle_stats(name):
            rs = [r for r in idle if r["name"] == name]
            bad = [r for r in rs if num(r["ok"]) != num(r["clients"]) or num(r["alive"]) != num(r["clients"])]
            return med(num(r["bytes_per_conn"]) for r in rs), rs, bad
        b, brs, bbad = idle_stats(PGB)
        c, crs, cbad = idle_stats(PGC)
        idle_n = idle[0]["clients"]
        why = f"{len(cbad)}/{len(crs)} runs with failed or dropped clients" if cbad else ""
        ok = None if c is None else (c <= 1024 and not cbad)
        bcell = fmt(b) + (f" ({len(bbad)}/{len(brs)} runs with failed clients)" if bbad else "")
        rows.append((f"idle clients ({int(num(idle_n)):,})", "RSS bytes / idle client", bcell, fmt(c), fmt(ratio(c, b), 2),
                     "pgcorral ≤ 1024 B", verdict(ok, why)))

    # connection storm
    if storm.rows:
        nc = storm.rows[0]["clients"]
        ratio_row(storm, "storm", f"connection storm (`-C`, SCRAM, {nc} clients)", "connections / s", "tps", 0,
                  ">=", 1.0)
        b, c = storm.median("storm", PGB, "pooler_cpu_us_per_tx"), storm.median("storm", PGC, "pooler_cpu_us_per_tx")
        rows.append(("", "pooler CPU µs / connection (info)", fmt(b, 1), fmt(c, 1), fmt(ratio(c, b), 2), "-", "-"))

    # many idle clients held while pgbench simple runs beside them
    if big:
        big_n = next((r["idle_n"] for r in big if r["phase"] == "with"), "?")

        def big_stats(name):
            rs = [r for r in big if r["name"] == name]
            wo = [r for r in rs if r["phase"] == "without"]
            wi = [r for r in rs if r["phase"] == "with"]
            t_wo = med(num(r["tps"]) for r in wo if r["status"] == "ok")
            t_wi = med(num(r["tps"]) for r in wi if r["status"] == "ok")
            errors = sum(r["status"] != "ok" for r in wo + wi)
            for r in wi:
                want = num(r["idle_n"]) or 0
                okc, held = num(r["idle_ok"]), num(r["idle_held_after"])
                if okc is None:
                    errors += int(want)  # clients never connected
                    continue
                errors += int(want - okc)                    # failed to connect/authenticate
                errors += int(max(0, okc - (held if held is not None else 0)))  # dropped by the end of pgbench
            return t_wo, t_wi, errors, len(wi)

        b_wo, b_wi, b_err, _ = big_stats(PGB)
        c_wo, c_wi, c_err, c_n = big_stats(PGC)
        qb, qc = ratio(b_wi, b_wo), ratio(c_wi, c_wo)

        def tcell(wi, wo, q):
            return f"{fmt(wi)} / {fmt(wo)} ({(q - 1) * 100:+.1f}%)" if q is not None else f"{fmt(wi)} / {fmt(wo)}"
        ok = None if qc is None else qc >= 0.9
        rows.append((f"{int(num(big_n) or 0):,} idle clients + `simple`", "tps with / without idle clients",
                     tcell(b_wi, b_wo, qb), tcell(c_wi, c_wo, qc), fmt(qc, 2) + " (pgcorral's)",
                     "pgcorral with ≥ 0.9 × without", verdict(ok)))
        rows.append(("", "errors (idle failed + dropped + pgbench failed runs)", str(b_err), str(c_err), "-",
                     "pgcorral 0", verdict(c_err == 0 if c_n else None)))

    # ---- print
    print(f"## pgcorral vs PgBouncer ({meta.get('date', '?')})")
    print()
    print(f"Medians of {meta.get('rounds', '?')} rounds × {meta.get('duration_s', '?')} s, transaction mode, "
          f"pool size 20, pgbench -j {meta.get('threads', '?')}, same PostgreSQL, targets interleaved.")
    print()
    print("| scenario | metric | PgBouncer | pgcorral | pgcorral/PgBouncer | target | met |")
    print("|---|---|--:|--:|--:|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print(f"Targets met: {met_count[0]}/{met_count[1]}.")
    print()
    notes = []
    for key in ("pgcorral", "pgbouncer", "postgres", "machine"):
        if key in meta:
            notes.append(f"{key}: {meta[key]}")
    if meta.get("pgb_log_connections") == "0":
        notes.append("PgBouncer runs with log_connections = log_disconnections = 0 and listen_backlog = 4096 "
                     "(pgcorral runs with log_level = warn, which logs no logins).")
    if storm.rows and meta.get("pgb_scram_secret"):
        how = {"verifier": "PostgreSQL's SCRAM verifier (no PBKDF2 per login; SCRAM pass-through to PostgreSQL)",
               "plain": "the plaintext password (PBKDF2 on every login)"}.get(meta["pgb_scram_secret"],
                                                                               meta["pgb_scram_secret"])
        notes.append(f"storm: PgBouncer's userlist holds {how}; pgcorral has password = \"bench\".")
    lat_runs = pg.ok("latency1", PGC)
    if lat_runs and len(lat_runs) > len({r["round"] for r in lat_runs}):
        per = len(lat_runs) / len({r["round"] for r in lat_runs})
        notes.append(f"latency1: {per:g} interleaved runs per target and round (LATENCY_SPLIT), "
                     "a round's latency from their mean tps.")
    sd = storm.median("storm", DIRECT, "tps")
    if sd is not None:
        notes.append(f"connection storm directly to PostgreSQL: {fmt(sd)} connections/s.")
    for name in (PGB, PGC):
        if big:
            errs = sorted({r["idle_errors"] for r in big if r["name"] == name and r.get("idle_errors") not in (None, "", "-")})
            for e in errs:
                notes.append(f"{name} {big_n} idle clients: {e}")
    for r in idle:
        if r.get("errors") not in (None, "", "-"):
            notes.append(f"{r['name']} idle round {r['round']}: {r['errors']}")
    for name, sc, rnd, st in failures:
        notes.append(f"failed: {name} `{sc}` round {rnd}: {st[:160]}")
    for b in big:
        if b["status"] != "ok":
            notes.append(f"failed: {b['name']} idle+pgbench ({b['phase']}) round {b['round']}: {b['status'][:160]}")
    if notes:
        print("Notes:")
        for note in notes:
            print(f"- {note}")


if __name__ == "__main__":
    main()
