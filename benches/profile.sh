#!/usr/bin/env bash
# Instructions per job, by function: one child run of the scenario harness
# under callgrind.
#
#   benches/profile.sh BINARY JOBS CHILD_ARGS...
#
# BINARY is a scenarios binary (`cargo bench --bench scenarios --no-run`
# names it); CHILD_ARGS are what follows `--child`, with JOBS where the
# child takes its job count. Prints the run's instructions per job, then the
# functions of taskpool, tokio and the allocator that cost the most
# (inclusive), per job. callgrind runs the program's threads one at a time,
# so the figures count work, not contention or waiting: read them beside
# wall-clock ratios, not instead of them.
set -euo pipefail
bin=$1 jobs=$2
shift 2
out=$(mktemp /tmp/callgrind.XXXXXX)
valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --child "$@" >/dev/null 2>"$out.log"
total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out.log")
echo "instructions per job: $((total / jobs))"
callgrind_annotate --inclusive=yes --threshold=99 "$out" 2>/dev/null |
    sed -En 's/^ *([0-9,]+) \([ 0-9.]+%\) +(.*)$/\1\t\2/p' |
    sed -E 's#/root/.cargo/registry/src/index.crates.io-[0-9a-f]+/##; s#/rustc/[0-9a-f]+/##; s/ \[[^]]*\]$//' |
    grep -E 'taskpool::|malloc.c:(malloc|free)$|tokio::(sync|task|runtime::task::waker)|async_channel|scenarios::' |
    awk -F'\t' -v jobs="$jobs" '{ n = $1; gsub(",", "", n); printf "%8.0f  %s\n", n / jobs, $2 }' |
    head -40
rm -f "$out" "$out.log"
