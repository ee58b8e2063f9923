#!/usr/bin/env bash
# User and kernel CPU time per proxied HTTP/1.1 request, meshgate beside nginx.
#   bench/cpu_split.sh [BIN]     (default target/release/meshgate)
# Each proxy runs alone on CPU 0 (one worker); an nginx "ok" backend and wrk
# (64 connections, 10 s) share CPU 1. utime and stime come from
# /proc/<pid>/stat before and after, so the split shows how much of a
# proxy's cost is the kernel's TCP work, which no user-space change removes.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/meshgate}
DURATION=${DURATION:-10}
for port in 28180 28181 28182; do
  [ -z "$(ss -ltnH "( sport = :$port )")" ] || { echo "port $port is in use" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
conf() { # name listen body
  cat > "$work/$1.conf" <<CONF
worker_processes 1;
pid $work/$1.pid;
error_log $work/$1.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  upstream backend { server 127.0.0.1:28180; keepalive 1024; }
  server { listen 127.0.0.1:$2; $3 } }
CONF
}
conf backend 28180 'location / { default_type text/plain; return 200 "ok"; }'
conf proxy 28181 'location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }'
taskset -c 1 nginx -p "$work" -c "$work/backend.conf" -g 'daemon off;' & pids+=($!)
taskset -c 0 nginx -p "$work" -c "$work/proxy.conf" -g 'daemon off;' & pids+=($!)
taskset -c 0 "$BIN" proxy --workers 1 --from 127.0.0.1:28182 --to 127.0.0.1:28180 >/dev/null 2>&1 & pids+=($!)
for port in 28181 28182; do
  for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$port/" && break; sleep 0.1; done
done
tick=$(getconf CLK_TCK)
measure() { # name pid port
  local before after reqs
  before=$(awk '{print $14, $15}' "/proc/$2/stat")
  reqs=$(taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" "http://127.0.0.1:$3/" | awk '/requests in/ {print $1}')
  after=$(awk '{print $14, $15}' "/proc/$2/stat")
  python3 - "$1" "$before" "$after" "$reqs" "$tick" "$DURATION" <<'PY'
import sys
name, b, a = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
reqs, tick, secs = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
u = (int(a[0]) - int(b[0])) / tick * 1e6 / reqs
s = (int(a[1]) - int(b[1])) / tick * 1e6 / reqs
print(f"{name:9} {reqs/secs:>9.0f} req/s  user {u:5.2f} us/req  kernel {s:5.2f} us/req  total {u+s:5.2f}")
PY
}
nginx_worker=$(pgrep -P "$(cat "$work/proxy.pid")" nginx | head -1)
for round in 1 2; do
  echo "# round $round"
  measure nginx "$nginx_worker" 28181
  measure meshgate "${pids[2]}" 28182
done
