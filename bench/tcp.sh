#!/usr/bin/env bash
# L4 bulk TCP throughput (issue 4): meshgate's `protocol = "tcp"` listener beside
# nginx stream and haproxy `mode tcp`, measured by iperf3 in one run on the same
# pinning (../shared/bench/run_tcp.sh, vendored in bench/harness/), as ratios.
#
#   cargo build --release -p meshgate
#   bench/tcp.sh               # full run: 3 rounds x 10 s per target
#   ROUNDS=5 bench/tcp.sh      # more rounds against the noise
#   COPY=1 bench/tcp.sh        # meshgate with splice off (MESHGATE_TCP_COPY=1)
#   SMOKE=1 bench/tcp.sh       # CI's scaled-down run: 1 round x 2 s, checks meshgate moved bytes
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
harness=${BENCH_HARNESS:-$root/bench/harness}
bin=${MESHGATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/meshgate}
[ -x "$bin" ] || { echo "build first: cargo build --release -p meshgate" >&2; exit 1; }
"$harness/setup.sh" >/dev/null

stamp=$(date +%Y%m%d_%H%M%S)
out=${OUTDIR_BASE:-/tmp/meshgate-bench}/meshgate_tcp_$stamp
mkdir -p "$out"
if [ "${SMOKE:-0}" = 1 ]; then
  export DURATION=2 ROUNDS=1 QUIET_MAX_WAIT=5 FOREIGN_MAX=1000
fi
port=${EXTRA_PORT:-15205}
# One worker thread, as nginx runs one worker and haproxy one thread. The
# upstream is the harness's iperf3 server (127.0.0.1:15201).
cat > "$out/meshgate_tcp.toml" <<CONF
[runtime]
workers = 1

[[listeners]]
name = "l4"
address = "127.0.0.1:$port"
protocol = "tcp"
cluster = "iperf"

[[clusters]]
name = "iperf"
endpoints = [{ address = "127.0.0.1:15201" }]
CONF
env="env MESHGATE_LOG=warn"
[ "${COPY:-0}" = 1 ] && env="$env MESHGATE_TCP_COPY=1"
EXTRA_PORT=$port TARGETS=${TARGETS:-"direct direct_shared nginx haproxy extra"} OUTDIR=$out \
  "$harness/run_tcp.sh" "$env $bin run -c $out/meshgate_tcp.toml"

python3 - "$out/results.csv" "${SMOKE:-0}" <<'PY' | tee "$out/ratios.txt"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
med = {}
for t in {r["target"] for r in rows}:
    med[t] = statistics.median(float(r["gbit_s"]) for r in rows if r["target"] == t)
mg = med.get("extra", 0.0)
print("meshgate tcp: %.2f Gbit/s (median of %d)" % (mg, sum(r["target"] == "extra" for r in rows)))
for peer, goal in (("nginx", "goal >= 1.5"), ("haproxy", ""), ("direct_shared", "same endpoints, no proxy"), ("direct", "no proxy, server on the proxy's core")):
    if med.get(peer):
        print("  meshgate / %-13s = %.2f   (%s %.2f Gbit/s) %s" % (peer, mg / med[peer], peer, med[peer], goal))
if sys.argv[2] == "1" and mg <= 0:
    print("SMOKE: meshgate moved no bytes", file=sys.stderr)
    sys.exit(1)
PY
echo "results in $out"
