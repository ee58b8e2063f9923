#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind.
#   bench/instructions.sh [BIN]           (default target/release/meshgate)
#   PROTO=h2 bench/instructions.sh [BIN]  h2c clients (16 x 10 streams) instead
#   KEEP=DIR bench/instructions.sh [BIN]  also keep both callgrind profiles in DIR
#                                         (compare with callgrind_annotate)
# Runs the proxy under valgrind twice (2,001 and 12,001 requests from
# `h2load --h1 -c 16`, or `h2load -c 16 -m 10`) against an nginx "ok" backend
# (HTTP/1.1 upstream either way), and divides the
# difference by 10,000, so start-up and shutdown cancel out. Deterministic for a
# given binary: use it to compare changes without benchmark noise.
# Also prints task polls and recv calls per request: under valgrind the proxy
# is ~50x slower than its clients, so a read tried before waiting often finds
# the next request already there, which saves a task poll (~1k instructions)
# that a native run pays. Compare instruction counts at equal polls.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=${1:-${CARGO_TARGET_DIR:-target}/release/meshgate}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
ports_free 28080 28085
work=$(mktemp -d)
ok_backend "$work/backend.conf" "$work" 28080
nginx -p "$work" -c "$work/backend.conf" -g 'daemon off;' & NGINX=$!
trap 'kill $NGINX 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5
run() {
  local n=$1
  local out=$work/cg.$n
  valgrind --tool=callgrind --callgrind-out-file=$out $BIN proxy --workers 1 --from 127.0.0.1:28085 --to 127.0.0.1:28080 >/dev/null 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -s -o /dev/null 127.0.0.1:28085/ && break; sleep 0.2; done
  if [ "${PROTO:-h1}" = h2 ]; then
    h2load -n $n -c 16 -m 10 http://127.0.0.1:28085/ >/dev/null 2>&1
  else
    h2load --h1 -n $n -c 16 http://127.0.0.1:28085/ >/dev/null 2>&1
  fi
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  [ -z "${KEEP:-}" ] || cp "$out" "$KEEP/cg.${PROTO:-h1}.$n"
  grep -E "^summary|^totals" "$out" | head -1 | awk '{print $2}'
}
a=$(run 2001); b=$(run 12001)
python3 -c "print('%s (%s): %.0f instructions/request' % ('$BIN', '${PROTO:-h1}', ($b-$a)/10000))"
python3 - "$work/cg.2001" "$work/cg.12001" <<'PY'
import re, sys
def calls(path, names):
    # Sums callgrind's `calls=` lines under each `cfn=` naming one of `names`.
    ids, total, cur = {}, dict.fromkeys(names, 0), None
    for line in open(path, errors='replace'):
        m = re.match(r'c?fn=\((\d+)\)(?: (.*))?', line.strip())
        if m:
            if m.group(2):
                ids[m.group(1)] = m.group(2)
            cur = ids.get(m.group(1)) if line.startswith('cfn=') else None
        elif line.startswith('calls=') and cur is not None:
            if cur in total:
                total[cur] += int(line.split()[0][6:])
            cur = None
    return total
names = ['tokio::runtime::task::raw::poll', 'recv']
a, b = calls(sys.argv[1], names), calls(sys.argv[2], names)
polls, recv = ((b[n] - a[n]) / 10000 for n in names)
print('  task polls/request %.2f, recv calls/request %.2f' % (polls, recv))
PY
