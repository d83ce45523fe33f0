#!/usr/bin/env bash
# npm run bench: raises the open-files limit to the hard limit when allowed (flowsync holds up to
# ~19,000 sockets in one process), then runs the benchmark. Arguments pass through to run.ts.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cd "$(dirname "$0")/../.." && exec node --import tsx scripts/bench/run.ts "$@"
