#!/usr/bin/env bash
# Sidecar footprint (issue 4): the resident memory of meshgate run as a sidecar
# (`[sidecar]` inbound in front of a small app, plus an outbound listener) while
# h2load sends it 1,000 req/s over keep-alive, beside nginx and haproxy doing the
# same reverse-proxy job, in one run. The goal is RSS <= 15 MB (Dapr 23 MB, Linkerd
# 26 MB, by the issue; neither is installable here).
#
#   cargo build --release -p meshgate
#   bench/sidecar_rss.sh                      # 30 s at 1,000 req/s per target
#   RATE=2000 DURATION=60 bench/sidecar_rss.sh
#   SMOKE=1 bench/sidecar_rss.sh              # CI: 3 s per target, checks no request failed
#
# Each proxy runs alone on CPU 0 (meshgate with its default runtime, one worker per
# core, and again with `runtime.workers = 1`); the app (nginx, `return 200`) and h2load
# share CPU 1. RSS is the proxy's whole process tree (VmRSS), sampled every 0.5 s:
# idle after one request, peak under load, and at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
harness=${BENCH_HARNESS:-$root/bench/harness}
bin=${MESHGATE_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/meshgate}
[ -x "$bin" ] || { echo "build first: cargo build --release -p meshgate" >&2; exit 1; }
"$harness/setup.sh" >/dev/null
RATE=${RATE:-1000}; DURATION=${DURATION:-30}; CLIENTS=${CLIENTS:-10}
[ "${SMOKE:-0}" = 1 ] && DURATION=3
out=${OUTDIR_BASE:-/tmp/meshgate-bench}/meshgate_sidecar_$(date +%Y%m%d_%H%M%S)
mkdir -p "$out"
U="python3 $harness/perfutil.py"
APP=18180
STARTED=()
cleanup() { local p; for p in "${STARTED[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
wait_listen() {
  for _ in $(seq 100); do ss -ltnH "( sport = :$1 )" | grep -q . && return 0; sleep 0.1; done
  echo "nothing listens on $1" >&2; return 1
}

cat > "$out/app.conf" <<EOF
worker_processes 1;
pid $out/app.pid;
error_log $out/app.err warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  server { listen 127.0.0.1:$APP; location / { default_type text/plain; return 200 "ok"; } }
}
EOF
mg_conf() { # $1 port, $2 workers line
  cat <<EOF
$2
[admin]
address = "127.0.0.1:18189"

[[clusters]]
name = "users"
endpoints = [{ address = "127.0.0.1:$APP" }]

[sidecar]
inbound = { address = "127.0.0.1:$1", app = "127.0.0.1:$APP" }

[[sidecar.outbound]]
cluster = "users"
address = "127.0.0.1:18188"
EOF
}
mg_conf 18181 "" > "$out/meshgate.toml"
mg_conf 18182 "[runtime]
workers = 1" > "$out/meshgate_1w.toml"
cat > "$out/nginx.conf" <<EOF
worker_processes 1;
pid $out/nginx.pid;
error_log $out/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  upstream app { server 127.0.0.1:$APP; keepalive 64; }
  server { listen 127.0.0.1:18183; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
EOF
cat > "$out/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 300s
  timeout server 300s
frontend fe
  bind 127.0.0.1:18184
  default_backend be
backend be
  server app 127.0.0.1:$APP
EOF

taskset -c 1 nginx -p "$out" -c "$out/app.conf" -g 'daemon off;' > "$out/app.out" 2>&1 &
STARTED+=("$!"); wait_listen $APP

echo "target,port,requests_ok,requests_failed,req_s,rss_idle_kib,rss_peak_kib,rss_end_kib" > "$out/results.csv"
failed_total=0
for t in meshgate meshgate_1w nginx haproxy; do
  case $t in
    meshgate)    port=18181; cmd=(env MESHGATE_LOG=warn "$bin" run -c "$out/meshgate.toml") ;;
    meshgate_1w) port=18182; cmd=(env MESHGATE_LOG=warn "$bin" run -c "$out/meshgate_1w.toml") ;;
    nginx)       port=18183; cmd=(nginx -p "$out" -c "$out/nginx.conf" -g 'daemon off;') ;;
    haproxy)     port=18184; cmd=(haproxy -f "$out/haproxy.cfg" -db) ;;
  esac
  taskset -c 0 "${cmd[@]}" > "$out/$t.out" 2>&1 &
  P=$!; STARTED+=("$P"); wait_listen $port
  curl -sf "http://127.0.0.1:$port/" > /dev/null
  sleep 1; idle=$($U rss "$P")
  peak=$idle
  taskset -c 1 h2load --h1 -c "$CLIENTS" --rps $((RATE / CLIENTS)) -D "$DURATION" \
    "http://127.0.0.1:$port/" > "$out/h2load_$t.txt" 2>&1 &
  L=$!
  while kill -0 "$L" 2>/dev/null; do
    r=$($U rss "$P"); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.5
  done
  wait "$L" || true
  end=$($U rss "$P")
  read -r ok bad < <(awk '/^requests:/ {print $8, $10}' "$out/h2load_$t.txt")
  rps=$(awk '/^finished in/ {gsub(",","",$4); print $4}' "$out/h2load_$t.txt")
  echo "$t,$port,${ok:-0},${bad:-?},${rps:-0},$idle,$peak,$end" | tee -a "$out/results.csv"
  case $t in meshgate*) failed_total=$((failed_total + ${bad:-1})); [ "${ok:-0}" -gt 0 ] || failed_total=$((failed_total + 1));; esac
  kill "$P" 2>/dev/null || true; wait "$P" 2>/dev/null || true
done
python3 - "$out/results.csv" <<'PY' | tee "$out/summary.txt"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("%-12s %9s %9s %13s %13s" % ("target", "req/s", "failed", "RSS idle MB", "RSS peak MB"))
for r in rows:
    print("%-12s %9s %9s %13.1f %13.1f" % (r["target"], r["req_s"], r["requests_failed"],
          int(r["rss_idle_kib"]) / 1024, int(r["rss_peak_kib"]) / 1024))
mg = next(r for r in rows if r["target"] == "meshgate")
print("meshgate peak RSS / 15 MB goal = %.2f" % (int(mg["rss_peak_kib"]) / 1024 / 15))
PY
if [ "$failed_total" != 0 ]; then echo "meshgate failed requests under load" >&2; exit 1; fi
