#!/usr/bin/env bash
# Instruction-count baseline for rcycle's benchmark workloads (callgrind).
#
#   benches/callgrind.sh <checkout> <output-file> [group ...]
#
# 1. builds the `compare` bench binary (benches/compare/main.rs) in <checkout>
#    with `cargo bench --bench compare --no-run --message-format=json`; the
#    executable path comes from cargo's JSON (fallback: the newest
#    target/release/deps/compare-* that is an executable file);
# 2. lists the (group, imp) pairs with RCYCLE_BENCH_LIST=1 and keeps those
#    whose imp is "rcycle" (the 11 criterion workloads plus the extra
#    measurements small_cycles_x4 and u64_objects), or only the groups given
#    after <output-file>;
# 3. runs each one, sequentially, as
#      RCYCLE_BENCH_MEASURE=<group>/rcycle valgrind --tool=callgrind \
#          --callgrind-out-file=/dev/null <binary>
#    and takes the total instruction count (Ir) from callgrind's
#    "Collected : N" line on stderr. The run must exit 0 and print its
#    `"status":"ok"` JSON line, or the script fails.
#
# Output: one line per group, "<group> <instructions>", in list order.
#
# Sizes: RCYCLE_BENCH_MEASURE mode always uses Sizes::full() (measure() in
# main.rs ignores RCYCLE_BENCH_SIZE, which only selects the criterion sizes,
# "tiny" or "full"), so these counts are for the full sizes; the script
# unsets RCYCLE_BENCH_SIZE anyway. Full size is cheap under valgrind, so
# nothing is skipped.
#
# What is counted: the whole process -- program start-up, the untimed setup of
# the idle_collect/latency live graphs and their teardown, and the /proc reads
# of measure() -- not just the part criterion times. Start-up is a fixed
# ~0.63M instructions (measured with RCYCLE_BENCH_LIST=1), 1.3% of the
# smallest workload (binary_trees, ~48M), so it slightly dilutes relative
# changes there. (--toggle-collect on measure() does not work: it is inlined.)
#
# Repeatability (base 1551873, 3 runs): run-to-run differences are at most
# ~1.7K instructions per workload (<0.003%); copying the binary to a longer
# path changed counts by ~1.5K as well. Far inside a +-2% tolerance.
#
# A full run (13 workloads) takes ~15 s once the binary is built; the slowest
# workload (latency) takes ~4 s under callgrind.
#
# Environment: JOBS (cargo -j, default 1: the machine is shared),
# VALGRIND (default "valgrind").
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 <checkout> <output-file> [group ...]" >&2
    exit 2
fi
wt=$(cd "$1" && pwd)
out=$2
shift 2
only=("$@")

unset RCYCLE_BENCH_SIZE RCYCLE_BENCH_REPEAT RCYCLE_BENCH_SKIP
valgrind=${VALGRIND:-valgrind}
jobs=${JOBS:-1}

echo "== build ($wt)" >&2
bin=$(cd "$wt" && cargo bench --bench compare --no-run -j "$jobs" --message-format=json |
    jq -r 'select(.reason == "compiler-artifact" and .target.name == "compare"
                  and .executable != null) | .executable' | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    bin=$(ls -t "$wt"/target/release/deps/compare-* 2>/dev/null |
        while read -r f; do [ -f "$f" ] && [ -x "$f" ] && { echo "$f"; break; }; done || true)
fi
if [ -z "$bin" ]; then
    echo "no compare bench executable found" >&2
    exit 1
fi
echo "== binary: $bin" >&2

groups=$(RCYCLE_BENCH_LIST=1 "$bin" | awk '$2 == "rcycle" { print $1 }')
if [ ${#only[@]} -gt 0 ]; then
    for g in "${only[@]}"; do
        grep -qx "$g" <<<"$groups" || { echo "no rcycle group $g" >&2; exit 1; }
    done
    groups=$(printf '%s\n' "${only[@]}")
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/out"
for g in $groups; do
    t0=$(date +%s)
    if ! RCYCLE_BENCH_MEASURE="$g/rcycle" "$valgrind" --tool=callgrind \
        --callgrind-out-file=/dev/null "$bin" >"$tmp/stdout" 2>"$tmp/stderr"; then
        echo "$g: run failed" >&2
        cat "$tmp/stderr" "$tmp/stdout" >&2
        exit 1
    fi
    grep -q '"status":"ok"' "$tmp/stdout" || {
        echo "$g: no ok status" >&2
        cat "$tmp/stdout" >&2
        exit 1
    }
    ir=$(sed -n 's/^==[0-9]*== Collected : \([0-9]*\).*/\1/p' "$tmp/stderr" | tail -n 1)
    [ -n "$ir" ] || { echo "$g: no 'Collected' line" >&2; cat "$tmp/stderr" >&2; exit 1; }
    echo "$g $ir" | tee -a "$tmp/out"
    echo "   ($(( $(date +%s) - t0 ))s)" >&2
done
mv "$tmp/out" "$out"
