#!/bin/bash
# Runs every controller benchmark in sequence (never two at once: they would disturb each
# other on a 2-core machine) and logs to bench/results/run_all-<time>.log.
#
#   bench/run_all.sh [SHOAL_CONTROLLER] [DRIVER]
#   QUICK=1 bench/run_all.sh ...          # smoke run
#
# SHOAL_CONTROLLER defaults to build/release/bin/shoal-controller (else build/dev/bin/...);
# DRIVER to build/release/bin/controller_driver, build/dev/bin/..., build/bench/bin/...
set -u
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
pick() { for p in "$@"; do [ -x "$p" ] && { echo "$p"; return; }; done; echo "$1"; }
shoal="${1:-$(pick "$root/build/release/bin/shoal-controller" "$root/build/dev/bin/shoal-controller")}"
driver="${2:-$(pick "$root/build/release/bin/controller_driver" "$root/build/dev/bin/controller_driver" "$root/build/bench/bin/controller_driver")}"
mkdir -p "$here/results"
log="$here/results/run_all-$(date +%Y%m%d-%H%M%S).log"
q=()
pyq=()
if [ "${QUICK:-0}" = 1 ]; then q=(--quick); pyq=(--quick); fi

run() {
  echo "=== $(date +%T) loadavg $(cut -d' ' -f1-3 /proc/loadavg): $*" | tee -a "$log"
  timeout 3600 "$@" 2>&1 | tee -a "$log"
}

echo "shoal-controller: $shoal ($(sha256sum "$shoal" | cut -c1-16))" | tee -a "$log"
echo "controller_driver: $driver" | tee -a "$log"
# 1. synthetic: 1000-engine registration (ping 100 ms and ipcontroller's 3000 ms), then
#    200k no-op tasks through task and mux, --nodb and the memory store, default hwm (1)
run "$driver" --shoal-controller "$shoal" --also-ping 3000 "${q[@]}"
# 2. the same task pump with --hwm=0 (no per-engine cap: the scheduler's routing capacity)
run "$driver" --shoal-controller "$shoal" --modes tasks --hwm 0 --rtt-calls 0 "${q[@]}"
# 3. realistic engines: iopub status busy/idle around every request
run "$driver" --shoal-controller "$shoal" --modes tasks --realistic --rtt-calls 0 "${q[@]}"
# 4. the stock controller under the same synthetic load (small M: it does ~500 tasks/s)
run "$driver" --stock --engines 1000 --ping 3000 --tasks 5000 --rtt-calls 500 "${q[@]}"
# 5. end to end with stock ipengines and the stock client, stock vs shoal, interleaved
run /usr/bin/python3 "$here/bench_controller.py" --shoal-controller "$shoal" "${pyq[@]}"
echo "log: $log"
