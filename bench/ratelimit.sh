#!/usr/bin/env bash
# Rate-limit decisions per second on one core (issue 5: >= 10M/s): the
# limiter as the proxy calls it, minus the socket and the HTTP request
# (keyed hash, shard lock, fixed table, GCRA, counter; the proxy reuses the
# request's start instant, so no clock read); a row with a clock read per
# decision; rows with steps taken away; and two threads sharing one limiter.
# A cargo bench with a plain main: it builds offline.
#
#   bench/ratelimit.sh            # full run, about 10 s after the build
#   SMOKE=1 bench/ratelimit.sh    # CI's run: every path once, checks the decisions, no verdict
#
# Results: docs/benchmarks.md, "Issue 5: rate-limit decisions".
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --locked -p meshgate-ratelimit --bench decisions
