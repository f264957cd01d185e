#!/usr/bin/env bash
# Before/after in one shape of scenario 8: two builds of the harness, side
# by side, with `tokio::spawn` measured in the same rounds.
#
#   benches/ab-shapes.sh OLD_BINARY NEW_BINARY ROUNDS CONTENDER JOBS PRODUCER CONSUMER JOB
#
# e.g. benches/ab-shapes.sh /tmp/old /tmp/new 7 worker_pool 200000 main drop tiny.
# Each round runs the contender with the old binary, then the new one, then
# `tokio_spawn` (old binary). Prints the median and range of new ÷ old and
# each side's median ratio to `tokio::spawn`. Run it alone.
set -euo pipefail
old=$1 new=$2 rounds=$3 contender=$4 jobs=$5 producer=$6 consumer=$7 job=$8
width=64
[[ $job == io ]] && width=256
run() {
    "$1" --child shape "$2" "$jobs" "$width" 1024 "$producer" "$consumer" "$job" |
        tr ' ' '\n' | sed -n 's/^elapsed_s=//p'
}
for ((r = 1; r <= rounds; r++)); do
    echo "$r old $(run "$old" "$contender")"
    echo "$r new $(run "$new" "$contender")"
    echo "$r spawn $(run "$old" tokio_spawn)"
done | python3 -c '
import collections, statistics, sys
d = collections.defaultdict(dict)
for line in sys.stdin:
    r, side, t = line.split()
    d[int(r)][side] = float(t)
ratio = [d[r]["new"] / d[r]["old"] for r in d]
vs = lambda side: statistics.median(d[r][side] / d[r]["spawn"] for r in d)
print("new / old %.2f (%.2f-%.2f); old / tokio::spawn %.2f; new / tokio::spawn %.2f"
      % (statistics.median(ratio), min(ratio), max(ratio), vs("old"), vs("new")))
'
