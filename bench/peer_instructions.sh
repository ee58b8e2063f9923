#!/usr/bin/env bash
# User-space instructions per proxied request of the *peers*, counted by
# callgrind exactly as bench/instructions.sh counts meshgate's, so the two
# can be compared:
#   bench/peer_instructions.sh           nginx, HTTP/1.1 (h2load --h1 -c 16)
#   PROTO=h2 bench/peer_instructions.sh  haproxy, h2c (h2load -c 16 -m 10)
# Both proxy to an nginx "ok" backend over HTTP/1.1 keep-alive, configured
# as in the harness (bench/harness/run_baselines.sh, run_h2.sh). The proxy
# runs under valgrind twice (2,001 and 12,001 requests); the difference over
# 10,000 cancels start-up and shutdown.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
ports_free 28180 28185
work=$(mktemp -d)
ok_backend "$work/backend.conf" "$work" 28180
# The proxy in the foreground, one process, so valgrind follows the worker.
cat > "$work/nginx.conf" <<CONF
master_process off;
daemon off;
worker_processes 1;
pid $work/proxy.pid;
error_log $work/proxy.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  upstream backend { server 127.0.0.1:28180; keepalive 1024; }
  server { listen 127.0.0.1:28185;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
haproxy_h2 "$work/haproxy.cfg" 28185 28180
nginx -p "$work" -c "$work/backend.conf" -g 'daemon off;' & BACKEND=$!
trap 'kill $BACKEND 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5
if [ "${PROTO:-h1}" = h2 ]; then
  name=haproxy proxy=(haproxy -f "$work/haproxy.cfg" -db) curl_opt=--http2-prior-knowledge
  load=(-c 16 -m 10)
else
  name=nginx proxy=(nginx -p "$work" -c "$work/nginx.conf") curl_opt=--http1.1
  load=(--h1 -c 16)
fi
run() {
  local n=$1 out=$work/cg.$1
  valgrind --tool=callgrind --callgrind-out-file="$out" "${proxy[@]}" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -s "$curl_opt" -o /dev/null 127.0.0.1:28185/ && break; sleep 0.2; done
  h2load -n "$n" "${load[@]}" http://127.0.0.1:28185/ >/dev/null 2>&1
  # nginx quits gracefully on QUIT, haproxy on TERM; either writes the profile.
  if [ "$name" = haproxy ]; then kill -TERM "$pid"; else kill -QUIT "$pid"; fi
  wait "$pid" 2>/dev/null || true
  grep -E "^summary|^totals" "$out" | head -1 | awk '{print $2}'
}
a=$(run 2001); b=$(run 12001)
python3 -c "print('%s (%s): %.0f instructions/request' % ('$name', '${PROTO:-h1}', ($b-$a)/10000))"
