#!/usr/bin/env bash
# A longer fuzzing run than CI's 10^5 cases per parser: bash .ci/fuzz-long.sh [cases per parser, default 10^7] [seed].
# A failure prints the CsCheck seed; rerun with it as the second argument, then keep the input as a regression case.
set -euo pipefail
cd "$(dirname "$0")/.."
export CROC_FUZZ_ITERATIONS="${1:-10000000}"
[ $# -ge 2 ] && export CROC_FUZZ_SEED="$2"
dotnet test Croc.Tests -c Release --filter "FullyQualifiedName~.Fuzz." --logger "console;verbosity=normal"
