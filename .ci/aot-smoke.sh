#!/usr/bin/env bash
# Native AOT smoke check: publish the croc command line native AOT (as it ships), then move a folder and a text
# through its own relay on 127.0.0.1 and compare the result byte for byte. The libraries' trimming and AOT
# analyzers run on every build; this shows the published program actually works.
#
#   bash .ci/aot-smoke.sh [output folder]      (default artifacts/aot)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-artifacts/aot}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
fail() { echo "native AOT smoke: $1"; for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }; done; exit 1; }

dotnet publish samples/Croc.Cli/Croc.Cli.csproj -c Release -r linux-x64 -p:PublishAot=true -o "$OUT" -nologo \
  > "$WORK/publish.log" 2>&1 || fail "publish failed"
CROC=$(cd "$OUT" && pwd)/croc
[ -x "$CROC" ] && [ ! -e "$OUT/Croc.Cli" ] || fail "the published binary is not named croc (or Croc.Cli is left next to it)"

# Ports from a random base below the kernel's ephemeral range (32768+); a base that is taken makes the relay exit,
# and the next try takes another.
UP=0
for _ in 1 2 3; do
  BASE=$((20000 + RANDOM % 12000))
  "$CROC" relay --listen "http://127.0.0.1:$BASE" --ports "$((BASE + 1))-$((BASE + 2))" > "$WORK/relay.log" 2>&1 &
  RELAY=$!; PIDS+=("$RELAY")
  for _ in $(seq 1 100); do
    kill -0 "$RELAY" 2>/dev/null || break
    if (exec 3<>"/dev/tcp/127.0.0.1/$BASE") 2>/dev/null; then UP=1; break; fi
    sleep 0.1
  done
  # Still alive a moment later: the port answering is ours, not another program's.
  if [ "$UP" = 1 ]; then sleep 0.3; kill -0 "$RELAY" 2>/dev/null && break; UP=0; fi
  kill "$RELAY" 2>/dev/null || true
done
[ "$UP" = 1 ] || fail "the relay did not start"
export CROC_RELAY="http://127.0.0.1:$BASE"

mkdir -p "$WORK/src/folder/sub" "$WORK/in"
head -c 3000000 /dev/urandom > "$WORK/src/folder/big.bin"
for i in $(seq 1 50); do head -c $((i * 100)) /dev/urandom > "$WORK/src/folder/sub/f$i"; done

CODE="ab12cd34-apple-river-stone"
(cd "$WORK/src" && timeout 60 "$CROC" send --no-progress --code "$CODE" folder > "$WORK/send.log" 2>&1) & SEND=$!; PIDS+=("$SEND")
(cd "$WORK/in" && CROC_SECRET="$CODE" timeout 60 "$CROC" receive --yes --no-progress > "$WORK/receive.log" 2>&1) \
  || fail "receiving the folder failed"
wait "$SEND" || fail "sending the folder failed"
diff -r "$WORK/src/folder" "$WORK/in/folder" > "$WORK/diff.log" 2>&1 || fail "the received folder differs"

CODE="ab12cd35-lemon-tiger-cloud"
timeout 60 "$CROC" send --no-progress --code "$CODE" --text "hello from native AOT" > "$WORK/send.log" 2>&1 & SEND=$!; PIDS+=("$SEND")
TEXT=$(CROC_SECRET="$CODE" timeout 60 "$CROC" receive --yes --quiet 2> "$WORK/receive.log") || fail "receiving the text failed"
wait "$SEND" || fail "sending the text failed"
[ "$TEXT" = "hello from native AOT" ] || fail "the text differs: '$TEXT'"
echo "native AOT smoke: folder and text transferred intact ($(du -h "$CROC" | cut -f1) binary)"
