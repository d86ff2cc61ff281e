#!/usr/bin/env bash
# One traced and profiled transfer of ours: stage timeline (CROC_BENCH_TRACE), CPU/RSS per process, and where the
# CPU goes per process (perf record, software cpu-clock: this VM has no hardware counters; JIT frames resolved
# through DOTNET_PerfMapEnabled=1).
#
#   bash bench/profile.sh <file-or-folder> [--ports N] [--no-perf] [--strace]
#
# Needs: linux-perf (apt-get install linux-perf), strace for --strace. Writes to $CROC_BENCH_PROFILE
# (default /tmp/croc-bench-profile): *.trace, *.time, *.perf.data, *.report.txt, *.strace.
# Loopback only; runs inside its own network namespace.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/bench/Croc.TransferBench/bin/Release/net10.0/Croc.TransferBench"
SRC=""; PORTS=4; PERF=1; STRACE=0; INNER=0
while [ $# -gt 0 ]; do
  case "$1" in
    --ports) PORTS="$2"; shift ;;
    --no-perf) PERF=0 ;;
    --strace) STRACE=1 ;;
    --inner) INNER=1 ;;
    *) SRC=$(realpath "$1") ;;
  esac
  shift
done
[ -n "$SRC" ] || { sed -n '2,10p' "$0"; exit 2; }
OUT=${CROC_BENCH_PROFILE:-/tmp/croc-bench-profile}
if [ "$INNER" = 0 ]; then
  dotnet build "$ROOT/bench/Croc.TransferBench/Croc.TransferBench.csproj" -c Release -nologo -v q >/dev/null
  args=("$SRC" --ports "$PORTS" --inner); [ "$PERF" = 0 ] && args+=(--no-perf); [ "$STRACE" = 1 ] && args+=(--strace)
  exec unshare --net bash "$0" "${args[@]}"
fi
ip link set lo up
mkdir -p "$OUT"; rm -rf "$OUT/recv"; mkdir -p "$OUT/recv"; rm -f "$OUT"/*.perf.data "$OUT"/*.strace; sync
export CROC_BENCH_TRACE=1 DOTNET_PerfMapEnabled=1
wrap() { # role -> command prefix
  local p=(/usr/bin/time -f '%e s wall, %U s user, %S s sys, %M KiB peak RSS' -o "$OUT/$1.time")
  [ "$PERF" = 1 ] && p+=(perf record -q -e cpu-clock -F 1999 -g -o "$OUT/$1.perf.data")
  [ "$STRACE" = 1 ] && p+=(strace -f -c -o "$OUT/$1.strace")
  printf '%s\n' "${p[@]}"
}
mapfile -t RW < <(wrap relay); mapfile -t SW < <(wrap send); mapfile -t VW < <(wrap recv)
rm -f "$OUT/url"
rm -f "$OUT/relay.pid"
"${RW[@]}" "$BIN" relay --port-file "$OUT/url" --ports "$PORTS" --pid-file "$OUT/relay.pid" 2> "$OUT/relay.trace" & relay=$!
for _ in $(seq 1 200); do [ -s "$OUT/url" ] && break; sleep 0.05; done
code="prof${RANDOM}-apple-river-stone"
t0=$(date +%s.%N)
"${SW[@]}" "$BIN" send --relay "$(cat "$OUT/url")" --code "$code" "$SRC" 2> "$OUT/send.trace" & s=$!
"${VW[@]}" "$BIN" receive --relay "$(cat "$OUT/url")" --code "$code" --out "$OUT/recv" 2> "$OUT/recv.trace" & r=$!
wait "$s"; wait "$r"
t1=$(date +%s.%N)
sleep 0.5; kill -INT "$(cat "$OUT/relay.pid")"; wait "$relay" || true
if [ -d "$SRC" ]; then diff -r -q "$SRC" "$OUT/recv/$(basename "$SRC")"; else cmp "$SRC" "$OUT/recv/$(basename "$SRC")"; fi
echo "wall $(echo "$t1 - $t0" | bc) s (verified)"
for role in send recv relay; do
  echo "== $role: $(cat "$OUT/$role.time" | tail -1)"
  sed 's/^/   /' "$OUT/$role.trace" | grep -v '^   *$' | head -20
  if [ "$PERF" = 1 ]; then
    perf report -i "$OUT/$role.perf.data" --no-children --sort dso --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -8 > "$OUT/$role.dso.txt" || true
    perf report -i "$OUT/$role.perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -40 > "$OUT/$role.report.txt" || true
    echo "   -- CPU by DSO"; sed 's/^/   /' "$OUT/$role.dso.txt"
    echo "   -- top symbols"; head -15 "$OUT/$role.report.txt" | sed 's/^/   /'
  fi
  if [ "$STRACE" = 1 ]; then echo "   -- syscalls"; sed -n '1,14p' "$OUT/$role.strace" | sed 's/^/   /'; fi
done
