#!/usr/bin/env bash
# Two contenders of scenario 8, one build, in A-B-B-A order (A first in odd
# rounds, B first in even ones, so that neither always runs second): prints
# the median of B's time ÷ A's, taken within each round, and its range.
#
#   benches/abba.sh BINARY ROUNDS JOBS PRODUCER CONSUMER A B
#
# e.g. benches/abba.sh BIN 30 200000 task drop worker_pool-latency worker_pool
# (what the default latency histograms cost). Tiny jobs, width 64, queue
# 1024. Run it alone; an A/A run (A given twice) shows the host's noise.
# FIELD=whole_s times the whole run (the runtime built, the pool built, run
# and shut down, the runtime gone) instead of the run alone (elapsed_s).
set -euo pipefail
bin=$1 rounds=$2 jobs=$3 producer=$4 consumer=$5 a=$6 b=$7
field=${FIELD:-elapsed_s}
run() {
    "$bin" --child shape "$1" "$jobs" 64 1024 "$producer" "$consumer" tiny |
        tr ' ' '\n' | sed -n "s/^$field=//p"
}
for ((r = 1; r <= rounds; r++)); do
    if ((r % 2)); then
        x=$(run "$a")
        y=$(run "$b")
    else
        y=$(run "$b")
        x=$(run "$a")
    fi
    echo "$x $y"
done | python3 -c '
import statistics, sys
r = sorted(float(b) / float(a) for a, b in (line.split() for line in sys.stdin))
print("%s / %s %.3f (%.2f-%.2f), %d rounds"
      % (sys.argv[2], sys.argv[1], statistics.median(r), r[0], r[-1], len(r)))
' "$a" "$b"
