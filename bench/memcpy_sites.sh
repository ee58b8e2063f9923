#!/usr/bin/env bash
# Where meshgate copies memory per proxied request: every memcpy of 64 bytes
# or more, by call site (file:line, inlined frames outermost last) and size,
# per request. Moves of large values between pipeline stages (requests,
# responses, futures) show up here; they cost instructions and, more, stores
# and cache lines.
#   bench/memcpy_sites.sh [BIN]           HTTP/1.1, 10,000 requests (h2load --h1 -c 16)
#   PROTO=h2 bench/memcpy_sites.sh [BIN]  h2c (h2load -c 16 -m 10)
# Needs a C compiler (for the LD_PRELOAD counter in bench/memcpy/) and
# addr2line (binutils). Counts, not timings: any machine will do.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
BIN=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/meshgate}")
N=10000
ports_free 28280 28285
work=$(mktemp -d)
cc -O2 -shared -fPIC -o "$work/interpose.so" bench/memcpy/interpose.c
ok_backend "$work/backend.conf" "$work" 28280
nginx -p "$work" -c "$work/backend.conf" -g 'daemon off;' & NGINX=$!
trap 'kill $NGINX 2>/dev/null; rm -rf "$work"' EXIT
LD_PRELOAD=$work/interpose.so MCP_OUT=$work/copies \
  "$BIN" proxy --workers 1 --from 127.0.0.1:28285 --to 127.0.0.1:28280 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:28285/ && break; sleep 0.1; done
if [ "${PROTO:-h1}" = h2 ]; then
  h2load -n $N -c 16 -m 10 http://127.0.0.1:28285/ >/dev/null
else
  h2load --h1 -n $N -c 16 http://127.0.0.1:28285/ >/dev/null
fi
kill -INT "$pid"; wait "$pid" 2>/dev/null || true
python3 - "$BIN" "$work/copies" "$N" <<'PY'
import signal, subprocess, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
binp, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = None
for line in open(path + '.maps'):
    if line.rstrip().endswith(binp) and base is None:
        start, offset = line.split()[0].split('-')[0], line.split()[2]
        base = int(start, 16) - int(offset, 16)
rows = [tuple(int(x, 16) if i == 0 else int(x) for i, x in enumerate(l.split())) for l in open(path)]
# Sites that copy on (nearly) every request; start-up copies fall below.
rows = [r for r in rows if r[2] >= n // 2]
def site(addr):
    out = subprocess.run(['addr2line', '-f', '-C', '-i', '-e', binp, hex(addr - base - 1)],
                         capture_output=True, text=True).stdout.splitlines()
    frames = [f'{out[i + 1].rsplit("/", 1)[-1]}' for i in range(0, len(out) - 1, 2)]
    return ' <- '.join(frames[:4])
calls = sum(c for _, _, c in rows) / n
total = sum(s * c for _, s, c in rows) / n
print(f'{binp}: per request, {calls:.0f} copies of 64+ bytes, {total:,.0f} bytes in all')
for addr, size, count in sorted(rows, key=lambda r: -r[1] * r[2]):
    print(f'{count / n:5.2f} x {size:5d} B  {site(addr)}')
PY
