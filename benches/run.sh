#!/usr/bin/env bash
# Runs the benchmarks and writes BENCHMARKS.md (issue 4).
#
#   benches/run.sh            # the whole run, about 10 minutes on 2 cores
#
# Steps:
#  1. builds the `compare` bench binary (benches/compare/);
#  2. runs every (workload, implementation) pair once at full size in its own
#     process, on the 8 MiB main thread: its peak RSS (VmHWM) is read at the
#     end, its drop count checked; a pair that overflows the stack kills that
#     process only, and is recorded (exit status and message) and left out of
#     step 3;
#  3. `cargo bench --bench compare` (criterion, reduced sample counts and
#     times: RCYCLE_BENCH_WARMUP / RCYCLE_BENCH_MEASURE_TIME seconds) and
#     `cargo bench --bench report`;
#  4. the same binary with RCYCLE_BENCH_PAIRED runs every workload again with
#     the implementations interleaved round by round (benches/compare/
#     paired.rs; RCYCLE_BENCH_PAIRED_SECS seconds per workload, 4 by
#     default): ratios a drifting machine speed cannot skew, on which the
#     targets are judged; then `cargo bench --bench phases` times build,
#     drop and collect apart against `Rc` (benches/phases.rs);
#  5. the same binary with RCYCLE_BENCH_WRITE writes BENCHMARKS.md from
#     criterion's estimates (target/criterion/*/*/new/estimates.json, median),
#     the interleaved rounds and the measurements of step 2, with the
#     reporter-at-scale section that `benches/report_scale.sh` wrote to
#     benches/report_scale.md (RCYCLE_REPORT_WRITE; not rerun here: it takes
#     Python's tools and about 10 minutes of its own), appending
#     benches/notes.md.
#
# Needs jq. Extra arguments go to criterion (e.g. a filter), but a filtered
# run leaves the other workloads out of BENCHMARKS.md. RCYCLE_BENCH_WRITE_ONLY=1
# skips steps 2 and 3 and rewrites BENCHMARKS.md from the last run's results
# (after editing benches/notes.md, say).
set -euo pipefail
cd "$(dirname "$0")/.."

warmup=${RCYCLE_BENCH_WARMUP:-1}
measure=${RCYCLE_BENCH_MEASURE_TIME:-3}
out=target/rcycle-bench
mkdir -p "$out"
start=$(date +%s)

echo "== build" >&2
bin=$(cargo bench --bench compare --no-run --message-format=json |
  jq -r 'select(.executable != null and .target.name == "compare") | .executable' | tail -n1)
[ -x "$bin" ] || { echo "no bench binary" >&2; exit 1; }

# Step 5: BENCHMARKS.md from criterion's estimates and the measurements.
write_md() {
  RCYCLE_BENCH_WRITE=BENCHMARKS.md \
    RCYCLE_BENCH_CRITERION_DIR=target/criterion \
    RCYCLE_BENCH_MEASUREMENTS="$out/measurements.jsonl" \
    RCYCLE_BENCH_PAIRED_RESULTS="$out/paired.jsonl" \
    RCYCLE_BENCH_META="$out/meta.json" \
    RCYCLE_BENCH_NOTES=benches/notes.md \
    RCYCLE_BENCH_PHASES="$out/phases.md" \
    "$bin"
}

if [ -n "${RCYCLE_BENCH_WRITE_ONLY:-}" ]; then
  echo "== BENCHMARKS.md (from the last run)" >&2
  write_md
  exit 0
fi

echo "== peak memory and stack probes, one process per pair" >&2
: >"$out/measurements.jsonl"
skip=()
while read -r group imp; do
  set +e
  line=$(RCYCLE_BENCH_MEASURE="$group/$imp" "$bin" 2>"$out/stderr.txt" | tail -n1)
  rc=$?
  set -e
  if [ "$rc" -eq 0 ] && [ -n "$line" ]; then
    echo "$line" >>"$out/measurements.jsonl"
    echo "   $group/$imp: $line" >&2
  else
    msg=$(grep -v '^note:' "$out/stderr.txt" | tail -n2 | tr '\n' ' ')
    if [ "$rc" -gt 128 ]; then
      msg="signal $((rc - 128)) ($(kill -l $((rc - 128)))): $msg"
    fi
    jq -nc --arg g "$group" --arg i "$imp" --argjson rc "$rc" --arg m "$msg" \
      '{group: $g, imp: $i, status: "crashed", exit: $rc, message: $m}' >>"$out/measurements.jsonl"
    echo "   $group/$imp: CRASHED, exit $rc: $msg" >&2
    skip+=("$group/$imp")
  fi
done < <(RCYCLE_BENCH_LIST=1 "$bin")

echo "== criterion" >&2
rm -rf target/criterion
skip_list=$(IFS=,; echo "${skip[*]:-}")
RCYCLE_BENCH_SKIP="$skip_list" RCYCLE_BENCH_WARMUP="$warmup" RCYCLE_BENCH_MEASURE_TIME="$measure" \
  cargo bench --bench compare -- "$@"
cargo bench --bench report -- --warm-up-time "$warmup" --measurement-time "$measure" "$@"

echo "== interleaved rounds" >&2
RCYCLE_BENCH_SKIP="$skip_list" RCYCLE_BENCH_PAIRED="$out/paired.jsonl" "$bin"

echo "== phases against Rc" >&2
cargo bench --bench phases >"$out/phases.md"

echo "== BENCHMARKS.md" >&2
end=$(date +%s)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
jq -n \
  --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  --arg nproc "$(nproc)" \
  --arg cpu "${cpu:-unknown}" \
  --arg kernel "$(uname -sr)" \
  --arg stack "$(ulimit -s)" \
  --arg rustc "$(rustc --version)" \
  --arg warmup "$warmup" --arg measure "$measure" --arg samples 10 \
  --arg duration "$(((end - start) / 60)) min $(((end - start) % 60)) s" \
  --arg command "benches/run.sh $*" \
  --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- src derive Cargo.toml 2>/dev/null || echo ' + uncommitted changes')" \
  '{date: $date, nproc: $nproc, cpu: $cpu, kernel: $kernel, stack_kib: $stack, rustc: $rustc,
    warmup: $warmup, measure: $measure, samples: $samples, duration: $duration, command: $command,
    commit: $commit}' \
  >"$out/meta.json"
write_md
