#!/usr/bin/env bash
# Before/after: two builds of the scenario harness, side by side.
#
#   benches/ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [JOBS]
#
# Build each side with `cargo bench --bench scenarios --no-run` at its
# commit and copy the binary it names aside. Every round runs each
# contender once with each binary, interleaved, so a load burst on this
# shared machine falls on both sides; the report gives, per contender, the
# median and range of the per-round ratio new / old, and each side's median
# ratio to `tokio::spawn` within the same round. Run it alone: no build or
# other benchmark beside it.
set -euo pipefail
old=$1 new=$2 rounds=${3:-11} jobs=${4:-200000}
for ((r = 1; r <= rounds; r++)); do
    for c in tokio_spawn worker_pool bounded_spawner joinset_semaphore; do
        for side in old new; do
            bin=$old; [[ $side == new ]] && bin=$new
            t=$("$bin" --child tiny "$c" "$jobs" 64 1024 | tr ' ' '\n' | sed -n 's/^elapsed_s=//p')
            echo "$r $c $side $t"
        done
    done
done | python3 -c '
import collections, statistics, sys
d = collections.defaultdict(dict)
for line in sys.stdin:
    r, c, side, t = line.split()
    d[(int(r), side)][c] = float(t)
rounds = sorted({r for r, _ in d})
med = lambda xs: "%.2f (%.2f-%.2f)" % (statistics.median(xs), min(xs), max(xs))
print("| contender | new / old | old / tokio::spawn | new / tokio::spawn |")
print("|---|---:|---:|---:|")
for c in ["worker_pool", "bounded_spawner", "joinset_semaphore"]:
    nb = [d[(r, "new")][c] / d[(r, "old")][c] for r in rounds]
    o = [d[(r, "old")][c] / d[(r, "old")]["tokio_spawn"] for r in rounds]
    n = [d[(r, "new")][c] / d[(r, "new")]["tokio_spawn"] for r in rounds]
    print("| %s | %s | %s | %s |" % (c, med(nb), med(o), med(n)))
'
