#!/usr/bin/env bash
# meshgate's side-by-side benchmarks: `meshgate proxy` beside nginx and haproxy,
# in one run, on the same pinning, reported as ratios (docs/benchmarks.md).
#
#   cargo build --release -p meshgate
#   bench/run.sh                 # full run: HTTP/1.1 at 64 and 256 conns (3 rounds x 10 s), then h2c
#   SMOKE=1 bench/run.sh         # CI's scaled-down run: 1 round x 2 s, checks it works, no verdict
#   WHICH="h1" bench/run.sh      # only one of: h1 h2
#
# The harness in bench/harness/ is a vendored copy of ../shared/bench (same
# scripts, so a clean clone can run it); BENCH_HARNESS=/path overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
harness=${BENCH_HARNESS:-$root/bench/harness}
bin=${MESHGATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/meshgate}
[ -x "$bin" ] || { echo "build first: cargo build --release -p meshgate" >&2; exit 1; }
"$harness/setup.sh" >/dev/null

stamp=$(date +%Y%m%d_%H%M%S)
out=${OUTDIR_BASE:-/tmp/meshgate-bench}/meshgate_$stamp
mkdir -p "$out"
if [ "${SMOKE:-0}" = 1 ]; then
  export DURATION=2 ROUNDS=1 CONNS="64" QUIET_MAX_WAIT=5 FOREIGN_MAX=1000
fi
export EXTRA_NAME=meshgate
cmd="$bin proxy --workers 1 --from @LISTEN@ --to @UPSTREAM@"

for which in ${WHICH:-h1 h2}; do
  case $which in
    h1)
      TARGETS=${TARGETS_H1:-"direct_shared nginx haproxy meshgate"} OUTDIR=$out/h1 \
        "$harness/run_baselines.sh" "$cmd"
      ;;
    h2)
      # run_h2.sh names the extra target "extra".
      TARGETS=${TARGETS_H2:-"nginx haproxy extra"} OUTDIR=$out/h2 "$harness/run_h2.sh" "$cmd"
      ;;
  esac
done
python3 "$root/bench/ratios.py" "$out" | tee "$out/ratios.txt"
[ "${SMOKE:-0}" = 1 ] && python3 "$root/bench/ratios.py" --check-served "$out"
echo "results in $out"
