#!/usr/bin/env bash
# Contenders side by side in one shape of scenario 8, one build: each
# round runs every contender once, in the order given; prints the first
# one's ns/job (median) and every other one's time ÷ the first's, taken
# within each round (median, range over rounds).
#
#   benches/compare.sh BINARY ROUNDS JOBS PRODUCER CONSUMER JOB FIRST OTHER...
#
# e.g. benches/compare.sh BIN 7 1000000 task drop tiny worker_pool mux_pool async_channel_pool
# (`mux_pool`, child only, is issue 14's second direction written by hand:
# see BENCHMARKS.md). Width 64, or 256 for io jobs; queue 1024. Run it alone.
# FIELD=whole_s times the whole run (runtime, pool built and shut down)
# instead of the run alone (elapsed_s).
set -euo pipefail
bin=$1 rounds=$2 jobs=$3 producer=$4 consumer=$5 job=$6
field=${FIELD:-elapsed_s}
shift 6
width=64
[[ $job == io ]] && width=256
for ((r = 1; r <= rounds; r++)); do
    for contender in "$@"; do
        echo "$r $contender $("$bin" --child shape "$contender" "$jobs" "$width" 1024 \
            "$producer" "$consumer" "$job" | tr ' ' '\n' | sed -n "s/^$field=//p")"
    done
done | python3 -c '
import collections, statistics, sys
jobs, order, d = int(sys.argv[1]), sys.argv[2:], collections.defaultdict(dict)
for line in sys.stdin:
    r, contender, t = line.split()
    d[int(r)][contender] = float(t)
first = order[0]
out = ["%s %.0f ns/job" % (first, statistics.median(d[r][first] for r in d) / jobs * 1e9)]
for other in order[1:]:
    x = [d[r][other] / d[r][first] for r in d]
    out.append("%s / %s %.2f (%.2f-%.2f)" % (other, first, statistics.median(x), min(x), max(x)))
print("; ".join(out))
' "$jobs" "$@"
