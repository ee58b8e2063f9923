#!/usr/bin/env bash
# User and kernel CPU time per proxied request, meshgate beside its peer, and
# the kernel's work per request (TCP segments, optionally syscalls):
#   bench/cpu_split.sh [BIN]             HTTP/1.1, beside nginx (wrk, CONNS=64)
#   PROTO=h2 bench/cpu_split.sh [BIN]    h2c, beside haproxy (h2load -c64 -m10; CONNS sets -c)
#   SYSCALLS=1 bench/cpu_split.sh [BIN]  also count syscalls per request (strace -c
#                                        over 100,000 requests; slows the proxy, so
#                                        a separate pass after the timed rounds)
# Each proxy runs alone on CPU 0 (one worker); an nginx "ok" backend and the
# load generator share CPU 1. utime and stime come from /proc/<pid>/stat
# before and after; segments from nstat (the whole machine, so only the
# measured pair runs). The split shows how much of a proxy's cost is the
# kernel's TCP work, which no user-space change removes.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/meshgate}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
PROTO=${PROTO:-h1}
ports_free 28180 28181 28182
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
conf() { # name listen body
  cat > "$work/$1.conf" <<CONF
worker_processes 1;
pid $work/$1.pid;
error_log $work/$1.err warn;
worker_rlimit_nofile 20000;
events { worker_connections 19000; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  upstream backend { server 127.0.0.1:28180; keepalive 1024; }
  server { listen 127.0.0.1:$2 backlog=4096; $3 } }
CONF
}
ok_backend "$work/backend.conf" "$work" 28180
taskset -c 1 nginx -p "$work" -c "$work/backend.conf" -g 'daemon off;' & pids+=($!)
if [ "$PROTO" = h2 ]; then
  peer=haproxy
  haproxy_h2 "$work/haproxy.cfg" 28181 28180
  taskset -c 0 haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 & pids+=($!)
  peer_pid=$!
  curl_opt=--http2-prior-knowledge
else
  peer=nginx
  conf proxy 28181 'location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }'
  taskset -c 0 nginx -p "$work" -c "$work/proxy.conf" -g 'daemon off;' & pids+=($!)
  curl_opt=--http1.1
fi
taskset -c 0 "$BIN" proxy --workers 1 --from 127.0.0.1:28182 --to 127.0.0.1:28180 >/dev/null 2>&1 & pids+=($!)
mesh_pid=$!
for port in 28181 28182; do
  for _ in $(seq 100); do curl -s "$curl_opt" -o /dev/null "127.0.0.1:$port/" && break; sleep 0.1; done
done
# nginx's proxy is its worker process, not the master.
[ "$peer" = nginx ] && peer_pid=$(pgrep -P "$(cat "$work/proxy.pid")" nginx | head -1)
tick=$(getconf CLK_TCK)
load() { # port [requests]: prints the requests completed
  if [ "$PROTO" = h2 ]; then
    local what=(-D "$DURATION"); [ -n "${2:-}" ] && what=(-n "$2")
    taskset -c 1 h2load -t1 -c"$CONNS" -m10 "${what[@]}" "http://127.0.0.1:$1/" | awk '/succeeded/ {print $8}'
  elif [ -n "${2:-}" ]; then
    taskset -c 1 h2load --h1 -t1 -c"$CONNS" -n "$2" "http://127.0.0.1:$1/" | awk '/succeeded/ {print $8}'
  else
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$1/" | awk '/requests in/ {print $1}'
  fi
}
measure() { # name pid port
  local before after reqs segs
  nstat -n >/dev/null
  before=$(awk '{print $14, $15}' "/proc/$2/stat")
  reqs=$(load "$3")
  after=$(awk '{print $14, $15}' "/proc/$2/stat")
  segs=$(nstat 2>/dev/null | awk '$1 == "TcpOutSegs" {print $2}')
  python3 - "$1" "$before" "$after" "$reqs" "$tick" "$DURATION" "${segs:-0}" <<'PY'
import sys
name, b, a = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
reqs, tick, secs, segs = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
u = (int(a[0]) - int(b[0])) / tick * 1e6 / reqs
s = (int(a[1]) - int(b[1])) / tick * 1e6 / reqs
print(f"{name:9} {reqs/secs:>9.0f} req/s  user {u:5.2f} us/req  kernel {s:5.2f} us/req"
      f"  total {u+s:5.2f}  TCP segments {segs/reqs:.2f}/req")
PY
}
echo "# $PROTO: meshgate beside $peer"
for round in 1 2; do
  echo "# round $round"
  measure "$peer" "$peer_pid" 28181
  measure meshgate "$mesh_pid" 28182
done
if [ "${SYSCALLS:-0}" = 1 ]; then
  command -v strace >/dev/null || { echo "SYSCALLS=1 needs strace" >&2; exit 1; }
  echo "# syscalls per request (strace -c, 100,000 requests)"
  for t in "$peer $peer_pid 28181" "meshgate $mesh_pid 28182"; do
    set -- $t
    strace -c -f -p "$2" -o "$work/strace.$1" 2>/dev/null & tracer=$!
    sleep 1
    n=$(load "$3" 100000)
    kill -INT "$tracer" 2>/dev/null || true; wait "$tracer" 2>/dev/null || true
    awk -v n="$n" -v who="$1" '$4 ~ /^[0-9]+$/ && $NF != "total" {
        errs = (NF == 6) ? $5 : 0
        if ($4 / n >= 0.01) printf "  %-9s %-14s %.2f/req (%.2f failed)\n", who, $NF, $4 / n, errs / n }' \
      "$work/strace.$1"
  done
fi
