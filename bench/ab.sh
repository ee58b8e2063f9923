#!/usr/bin/env bash
# A/B two meshgate builds: CPU time per proxied request of each, in
# alternating short runs (A then B, B then A, ...) so both see the same
# minutes of this machine's drift. Answers "did this change (or this range of
# commits) cost time?" where a side-by-side run with the peers cannot: the
# peers' own rounds move 15-25% on these shared machines.
#   bench/ab.sh OLD_BIN NEW_BIN              h2c (h2load -c64 -m10)
#   PROTO=h1 bench/ab.sh OLD_BIN NEW_BIN     HTTP/1.1 keep-alive (h2load --h1 -c64)
#   N=rounds (10)  D=seconds per run (5)  CONNS=connections (64)
# Both proxies run on CPU 0 (one worker each, only one loaded at a time); the
# nginx "ok" backend and h2load share CPU 1. Prints B/A per round and the median.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
[ $# = 2 ] || { sed -n 2,12p "$0" >&2; exit 2; }
A=$1 B=$2 N=${N:-10} D=${D:-5} CONNS=${CONNS:-64} PROTO=${PROTO:-h2}
ports_free 28280 28281 28282
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
ok_backend "$work/backend.conf" "$work" 28280
taskset -c 1 nginx -p "$work" -c "$work/backend.conf" -g 'daemon off;' & pids+=($!)
taskset -c 0 "$A" proxy --workers 1 --from 127.0.0.1:28281 --to 127.0.0.1:28280 >/dev/null 2>&1 & pids+=($!)
pid_a=$!
taskset -c 0 "$B" proxy --workers 1 --from 127.0.0.1:28282 --to 127.0.0.1:28280 >/dev/null 2>&1 & pids+=($!)
pid_b=$!
for port in 28281 28282; do
  for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$port/" && break; sleep 0.1; done
done
flags=(-m10); [ "$PROTO" = h1 ] && flags=(--h1)
measure() { # pid port: prints µs of the process's CPU per completed request
  local before after n
  before=$(awk '{print $14 + $15}' "/proc/$1/stat")
  n=$(timeout $((D + 30)) taskset -c 1 h2load -t1 -c"$CONNS" "${flags[@]}" -D "$D" "http://127.0.0.1:$2/" | awk '/succeeded/ {print $8}')
  after=$(awk '{print $14 + $15}' "/proc/$1/stat")
  python3 -c "print('%.2f' % (($after - $before) / $(getconf CLK_TCK) * 1e6 / max(${n:-0}, 1)))"
}
measure "$pid_a" 28281 >/dev/null  # warm-up: connections, pools, caches
measure "$pid_b" 28282 >/dev/null
ratios=()
for i in $(seq "$N"); do
  if [ $((i % 2)) = 1 ]; then a=$(measure "$pid_a" 28281); b=$(measure "$pid_b" 28282)
  else b=$(measure "$pid_b" 28282); a=$(measure "$pid_a" 28281); fi
  r=$(python3 -c "print('%.3f' % ($b / $a))"); ratios+=("$r")
  echo "round $i: A $a us/req  B $b us/req  B/A $r"
done
python3 -c "import statistics, sys; print('median B/A %.3f over %d rounds' % (statistics.median(map(float, sys.argv[1:])), len(sys.argv) - 1))" "${ratios[@]}"
