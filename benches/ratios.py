#!/usr/bin/env python3
"""pgcorral / PgBouncer ratios of median tps and median pooler CPU µs per transaction,
per scenario, from run-all.sh TSV files (the shared bench harness's format)."""
import csv, statistics, sys
from collections import defaultdict

vals = defaultdict(lambda: defaultdict(list))
for path in sys.argv[1:]:
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            for col in ("tps", "pooler_cpu_us_per_tx"):
                try:
                    vals[(row["scenario"], row["name"])][col].append(float(row[col]))
                except (ValueError, KeyError):
                    pass

def med(scenario, name, col):
    xs = vals[(scenario, name)][col]
    return statistics.median(xs) if xs else None

print("scenario\ttps pgcorral/pgbouncer\tcpu-us/tx pgcorral/pgbouncer")
for scenario in sorted({s for s, _ in vals}):
    out = [scenario]
    for col in ("tps", "pooler_cpu_us_per_tx"):
        a, b = med(scenario, "pgcorral", col), med(scenario, "pgbouncer", col)
        out.append(f"{a / b:.2f}" if a and b else "-")
    print("\t".join(out))
