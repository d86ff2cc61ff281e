#!/usr/bin/env bash
# Runs N seeded fault cases (default 2000) through the fault suite of Croc.Tests and prints its summary:
# cases per fault kind, how many faults fired, outcomes, error codes, the slowest case, and every seed that broke
# the rules (replay one with CROC_FAULT_SEEDS=<seed>). The normal test run covers seeds 1-200; the soak starts at
# FIRST (default 1001) so it explores other seeds.
#
#   bench/fault-soak.sh [N] [FIRST]
#   CROC_FAULT_PARALLEL=16 bench/fault-soak.sh 5000     # more cases at once (default 12)
set -euo pipefail
count="${1:-2000}"
first="${2:-1001}"
last=$((first + count - 1))
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log="$(mktemp -t croc-fault-soak.XXXXXX)"
trap 'rm -f "$log"' EXIT

dotnet build "$root/Croc.Tests" -c Release -v quiet -nologo >/dev/null
echo "fault soak: seeds $first-$last"
status=0
CROC_FAULT_SEEDS="$first-$last" dotnet test "$root/Croc.Tests" -c Release --no-build \
  --filter "FullyQualifiedName~FaultSuiteTests.Seeds_FromEnvironment" \
  --logger "console;verbosity=detailed" >"$log" 2>&1 || status=$?

# The summary block, once (the logger repeats it under "Standard Output Messages").
awk '/fault cases in/ && !seen { seen = 1; on = 1 } on { print } on && /broken:/ { exit }' "$log"
grep -m1 -o 'seeded fault cases broke the rules (seeds [0-9,]*)' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "FAILED (exit $status); broken cases:"
  grep '^seed [0-9]*:.*VIOLATION' "$log" | sort -u -t: -k1,1 | cut -c1-600 || true
  grep -m3 -E 'error|Error Message' "$log" | head -5 || true
fi
exit "$status"
