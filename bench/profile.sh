#!/usr/bin/env bash
# One traced and profiled transfer of ours: stage timeline (CROC_BENCH_TRACE), CPU/RSS per process, and where the
# CPU goes per process (perf record, software cpu-clock: this VM has no hardware counters; JIT frames resolved
# through DOTNET_PerfMapEnabled=1).
#
#   bash bench/profile.sh <file-or-folder> [--ports N] [--no-perf] [--strace] [--bin PATH]
#
#   --bin PATH   profile this Croc.TransferBench binary (e.g. the native AOT one bench/run.sh publishes into
#                /tmp/croc-bench-data/aot) instead of building the JIT one
# As in bench/run.sh --memory hold, freed memory stays with the guest during the run (where the VM's
# page_reporting knob is writable) and a scratch file of the source's size is written and deleted first.
#
# Needs: linux-perf (apt-get install linux-perf), strace for --strace. Writes to $CROC_BENCH_PROFILE
# (default /tmp/croc-bench-profile): *.trace, *.time, *.perf.data, *.report.txt, *.strace.
# Loopback only; runs inside its own network namespace.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$ROOT/bench/Croc.TransferBench/bin/Release/net10.0/Croc.TransferBench"
SRC=""; PORTS=4; PERF=1; STRACE=0; INNER=0; CUSTOM_BIN=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ports) PORTS="$2"; shift ;;
    --no-perf) PERF=0 ;;
    --strace) STRACE=1 ;;
    --inner) INNER=1 ;;
    --bin) CUSTOM_BIN=$(realpath "$2"); shift ;;
    *) SRC=$(realpath "$1") ;;
  esac
  shift
done
[ -n "$SRC" ] || { sed -n '2,14p' "$0"; exit 2; }
[ -z "$CUSTOM_BIN" ] || BIN=$CUSTOM_BIN
OUT=${CROC_BENCH_PROFILE:-/tmp/croc-bench-profile}
if [ "$INNER" = 0 ]; then
  [ -n "$CUSTOM_BIN" ] || dotnet build "$ROOT/bench/Croc.TransferBench/Croc.TransferBench.csproj" -c Release -nologo -v q >/dev/null
  args=("$SRC" --ports "$PORTS" --inner); [ -n "$CUSTOM_BIN" ] && args+=(--bin "$CUSTOM_BIN"); [ "$PERF" = 0 ] && args+=(--no-perf); [ "$STRACE" = 1 ] && args+=(--strace)
  exec unshare --net bash "$0" "${args[@]}"
fi
ip link set lo up
mkdir -p "$OUT"; rm -rf "$OUT/recv"; mkdir -p "$OUT/recv"; rm -f "$OUT"/*.perf.data "$OUT"/*.strace; sync
KNOB=/sys/module/page_reporting/parameters/min_free_ms
if [ -w "$KNOB" ]; then
  KNOB_BEFORE=$(cat "$KNOB"); trap 'echo "$KNOB_BEFORE" > "$KNOB"' EXIT; echo 60000 > "$KNOB"
fi
SIZE_MIB=$(( $(du -sb --apparent-size "$SRC" | cut -f1) / 1048576 + 16 ))
dd if=/dev/zero of="$OUT/warm.bin" bs=1M count="$SIZE_MIB" status=none; rm -f "$OUT/warm.bin"; sync
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
