#!/usr/bin/env bash
# End-to-end transfer benchmark: Croc for .NET vs magic-wormhole (relay path) vs a bare TCP relay hop.
#
#   bash bench/run.sh [--install-peers] [--runs N] [--quick] [--only ours,ours-jit,ours-ws,ours-wss,wormhole,bare] [--ports N] [--out FILE]
#
#   --install-peers  apt-get install the peers and tools (time, socat, magic-wormhole, its mailbox server and
#                    transit relay); without it they must already be installed
#   --runs N         timed runs per case and tool (default 3); the table shows the median and min–max
#   --quick          64 MiB file and 1,000 small files instead of 1 GiB and 10,000 (a smoke run)
#   --only LIST      run only these tools (comma-separated): ours = our tool published native AOT (as the croc
#                    command line ships); ours-jit = the same program as a plain Release build on the JIT runtime
#                    (the library as it runs inside a .NET app); ours-ws = ours with every data connection a
#                    WebSocket leg to the same relay (no proxy); ours-wss = ours through a real nginx terminating TLS
#                    in front of the relay, every leg a wss:// WebSocket (the relay's TCP ports unreachable);
#                    wormhole; bare
#   --ports N        TCP ports (= stapled connections) our relay offers (default 4; an experiment knob)
#   --r2r            the ours-jit row uses a ReadyToRun publish instead of the plain build
#   --memory MODE    how the VM's memory is treated (docs/benchmarks.md, "The VM's memory"); every tool alike:
#                    hold: free memory stays with the guest for the run (page_reporting min_free_ms
#                      raised to 60 s, restored at exit; needs root) and a scratch file of the case's size is
#                      written and deleted before each single-file run, so every tool writes into warm memory;
#                      falls back to warm where the knob is missing
#                    warm (default): only the scratch file; changes no kernel or VM setting (tools that start slowly may still meet returned memory)
#                    cold: wait until freed memory has gone back to the host, so every tool faults its pages in
#   --case TEXT      run only the cases whose name contains TEXT (file-10M, file-1024M, files-10000)
#   --out FILE       where the markdown goes (default bench/results/latest.md; quick.md with --quick)
#
# CROC_BENCH_TMP (default /tmp) holds the received files: its file system is part of what is measured.
# Cases: a 10 MiB file (start-up cost and the RSS baseline), a 1 GiB file (throughput), and a folder of 10,000
# 4 KiB files (per-file cost). Test data lives in $CROC_BENCH_DATA (default /tmp/croc-bench-data) and is reused.
# Everything that moves a byte runs inside one private network namespace (unshare --net, only lo up), so no
# packet can leave the machine. Every process runs under GNU /usr/bin/time (CPU user+sys, peak RSS); the
# long-lived relays are read from /proc before and after each run. Every result is checked byte for byte.
# Both of our rows use the one relay process (the native AOT build), started once per case.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/bench/run.sh"
RUNS=3
QUICK=0
INSTALL=0
ONLY="ours,ours-jit,ours-ws,ours-wss,wormhole,bare"
PORTS=4
OUT=""
INNER=0
R2R=0
MEMORY=warm
CASE_FILTER=""
while [ $# -gt 0 ]; do
  case "$1" in
    --install-peers) INSTALL=1 ;;
    --runs) RUNS="$2"; shift ;;
    --quick) QUICK=1 ;;
    --r2r) R2R=1 ;;
    --memory) MEMORY="$2"; shift
      case "$MEMORY" in hold|warm|cold) ;; *) echo "--memory: hold, warm or cold" >&2; exit 2 ;; esac ;;
    --only) ONLY="$2"; shift ;;
    --ports) PORTS="$2"; shift ;;
    --case) CASE_FILTER="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --inner) INNER=1 ;;
    -h|--help) sed -n '2,31p' "$SELF"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

DATA=${CROC_BENCH_DATA:-/tmp/croc-bench-data}
if [ "$QUICK" = 1 ]; then BIG_MIB=64; NFILES=1000; else BIG_MIB=1024; NFILES=10000; fi
BIG="$DATA/file-${BIG_MIB}M.bin"
SMALL="$DATA/files-${NFILES}"
TEN="$DATA/file-10M.bin"
BIN=${CROC_BENCH_BIN:-"$DATA/aot/Croc.TransferBench"}
BIN_JIT=${CROC_BENCH_BIN_JIT:-"$ROOT/bench/Croc.TransferBench/bin/Release/net10.0/Croc.TransferBench"}
[ -n "$OUT" ] || { if [ "$QUICK" = 1 ]; then OUT="$ROOT/bench/results/quick.md"; else OUT="$ROOT/bench/results/latest.md"; fi; }
has() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- outer phase: tools, build, data
if [ "$INNER" = 0 ]; then
  PKGS="time socat magic-wormhole python3-magic-wormhole-mailbox-server magic-wormhole-transit-relay nginx openssl"
  if [ "$INSTALL" = 1 ]; then
    log "installing peers: $PKGS"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PKGS >/dev/null
  fi
  missing=""
  command -v unshare >/dev/null || missing="$missing util-linux(unshare)"
  [ -x /usr/bin/time ] || missing="$missing time"
  command -v python3 >/dev/null || missing="$missing python3"
  if has bare; then command -v socat >/dev/null || missing="$missing socat"; fi
  if has ours-wss; then
    { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || missing="$missing nginx"
    command -v openssl >/dev/null || missing="$missing openssl"
  fi
  if has wormhole; then
    command -v wormhole >/dev/null || missing="$missing magic-wormhole"
    command -v twistd3 >/dev/null || missing="$missing python3-twisted"
    { twistd3 wormhole-mailbox --help && twistd3 transitrelay --help; } >/dev/null 2>&1 \
      || missing="$missing python3-magic-wormhole-mailbox-server magic-wormhole-transit-relay"
  fi
  if [ -n "$missing" ]; then
    echo "missing:$missing -- rerun with --install-peers (or --only ours)" >&2
    exit 1
  fi

  mkdir -p "$DATA"
  # Build output goes to a log, shown when the build fails (dotnet writes compiler errors to stdout).
  build() { local what="$1"; shift; "$@" > "$DATA/build.log" 2>&1 || { cat "$DATA/build.log" >&2; echo "$what failed" >&2; exit 1; }; }
  if { has ours || has ours-jit || has ours-ws || has ours-wss; } && [ -z "${CROC_BENCH_BIN:-}" ]; then
    log "publishing Release, native AOT"
    rm -rf "$DATA/aot"
    build "native AOT publish" dotnet publish "$ROOT/bench/Croc.TransferBench/Croc.TransferBench.csproj" -c Release -r linux-x64 \
      -p:PublishAot=true -o "$DATA/aot" -nologo
    export CROC_BENCH_BUILD="Release, native AOT (dotnet publish -r linux-x64 -p:PublishAot=true)"
  fi
  if has ours-jit && [ -z "${CROC_BENCH_BIN_JIT:-}" ]; then
    if [ "$R2R" = 1 ]; then
      log "publishing Release, ReadyToRun (the JIT row)"
      build "ReadyToRun publish" dotnet publish "$ROOT/bench/Croc.TransferBench/Croc.TransferBench.csproj" -c Release -r linux-x64 \
        --self-contained false -p:PublishReadyToRun=true -o "$DATA/r2r" -nologo
      export CROC_BENCH_BIN_JIT="$DATA/r2r/Croc.TransferBench" CROC_BENCH_BUILD_JIT="Release, ReadyToRun (dotnet publish -p:PublishReadyToRun=true), JIT runtime"
    else
      log "building Release (the JIT row)"
      build "Release build" dotnet build "$ROOT/bench/Croc.TransferBench/Croc.TransferBench.csproj" -c Release -nologo
      export CROC_BENCH_BUILD_JIT="Release (dotnet build -c Release), JIT runtime"
    fi
  fi

  if [ ! -f "$BIG" ] || [ "$(stat -c %s "$BIG")" != $((BIG_MIB * 1048576)) ]; then
    log "making $BIG"
    head -c $((BIG_MIB * 1048576)) /dev/urandom > "$BIG.tmp" && mv "$BIG.tmp" "$BIG"
  fi
  if [ ! -f "$TEN" ]; then head -c $((10 * 1048576)) /dev/urandom > "$TEN.tmp" && mv "$TEN.tmp" "$TEN"; fi
  if [ ! -d "$SMALL" ] || [ "$(find "$SMALL" -type f | wc -l)" != "$NFILES" ]; then
    log "making $SMALL ($NFILES x 4 KiB)"
    rm -rf "$SMALL.tmp" "$SMALL"; mkdir -p "$SMALL.tmp"
    head -c $((NFILES * 4096)) /dev/urandom | (cd "$SMALL.tmp" && split -b 4096 -a 5 -d - f)
    mv "$SMALL.tmp" "$SMALL"
  fi
  # Sources come from the page cache in every run, for every tool.
  cat "$BIG" "$TEN" > /dev/null; find "$SMALL" -type f -exec cat {} + > /dev/null

  log "entering a private network namespace (only lo)"
  args=(--inner --runs "$RUNS" --only "$ONLY" --ports "$PORTS" --out "$OUT" --case "$CASE_FILTER" --memory "$MEMORY")
  [ "$QUICK" = 1 ] && args+=(--quick)
  exec unshare --net bash "$SELF" "${args[@]}"
fi

# ---------------------------------------------------------------- inner phase: inside the namespace
ip link set lo up 2>/dev/null || true
WORK=$(mktemp -d "${CROC_BENCH_TMP:-/tmp}/croc-bench-run.XXXXXX")
OUTDIR=""
RESULTS="$WORK/results.tsv"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
REPORTING=/sys/module/page_reporting/parameters
if [ "$MEMORY" = hold ]; then
  if [ -w "$REPORTING/min_free_ms" ]; then
    MIN_FREE_BEFORE=$(cat "$REPORTING/min_free_ms")
    trap 'echo "$MIN_FREE_BEFORE" > "$REPORTING/min_free_ms"; cleanup' EXIT
    echo 60000 > "$REPORTING/min_free_ms"
    log "memory: freed pages stay with the guest for 60 s during the run (min_free_ms was $MIN_FREE_BEFORE)"
  else
    log "memory: no writable $REPORTING/min_free_ms; using --memory warm"
    MEMORY=warm
  fi
fi
printf 'case\ttool\trun\twall\ts_cpu\ts_rss\tr_cpu\tr_rss\trelay_cpu\trelay_rss\tbytes\tfiles\tload\n' > "$RESULTS"

now() { date +%s.%N; }
# CPU seconds (user+sys) of a running process, from /proc/PID/stat fields 14 and 15.
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' "/proc/$1/stat"; }
proc_hwm() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# "/usr/bin/time -f" record: elapsed user sys maxrss_kib
timed() { local stats="$1"; shift; /usr/bin/time -f '%e %U %S %M' -o "$stats" "$@"; }
cpu_of() { awk 'NR==1 { printf "%.3f", $2 + $3 }' "$1"; }
rss_of() { awk 'NR==1 { printf "%.1f", $4 / 1024 }' "$1"; }
wait_for_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

# Each run receives into a new folder. Files are deleted between runs (1 GiB each); folders are kept until the case
# ends: ext4 skips inodes freed in the last few seconds when it allocates new ones (recently_deleted() in the
# profile), so deleting 10,000 files right before a run made that run's file creation several times slower.
OUT_SEQ=0
# This VM hands freed memory back to its host and charges ~2 s per GiB to fault it into page cache again, and which
# tool met such memory depended on the order of the runs and on how fast each started. hold/warm: before each
# single-file run write and delete a scratch file of the same size (untimed; with hold the freed pages also stay with
# the guest), so every tool starts from recently used memory. cold: wait for the memory to go back instead.
warm_pages() {
  [ "${KEEP_OUT:-0}" = 0 ] || return 0
  if [ "$MEMORY" = cold ]; then settle_pages; return 0; fi
  dd if=/dev/zero of="$WORK/warm.bin" bs=1M count="$1" status=none 2>/dev/null || true
  rm -f "$WORK/warm.bin"; sync
}
# --memory cold: instead, wait until the guest has handed the freed pages back to the host (the page_reporting
# counter stops moving), so that every tool writes into memory it must fault in again: the VM's steady state.
settle_pages() {
  local counter="$REPORTING/reported_kib" last now
  sync
  if [ ! -r "$counter" ]; then sleep 3; return 0; fi
  # Settled = the counter did not move for 3 s in a row (reporting runs every couple of seconds); at most 30 s.
  local quiet=0
  last=$(cat "$counter")
  for _ in $(seq 1 30); do
    sleep 1; now=$(cat "$counter")
    if [ "$now" = "$last" ]; then quiet=$((quiet + 1)); [ "$quiet" -ge 3 ] && return 0; else quiet=0; fi
    last=$now
  done
}
fresh_out() {
  if [ -d "${OUTDIR:-}" ] && [ "${KEEP_OUT:-0}" = 0 ]; then rm -rf "$OUTDIR"; fi
  OUT_SEQ=$((OUT_SEQ + 1)); OUTDIR="$WORK/out-$OUT_SEQ"; mkdir -p "$OUTDIR"; sync
  warm_pages "${WARM_MIB:-0}"
}
verify() { # source, received
  if [ -d "$1" ]; then diff -r -q "$1" "$2" >/dev/null; else cmp -s "$1" "$2"; fi || { echo "VERIFY FAILED: $2 differs from $1" >&2; exit 1; }
}
record() { # case tool run wall sstats rstats relay_cpu relay_rss bytes files
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" \
    "$(cpu_of "$5")" "$(rss_of "$5")" "$(cpu_of "$6")" "$(rss_of "$6")" "$7" "$8" "$9" "${10}" "${RUN_LOAD:-}" >> "$RESULTS"
  log "  $2 $1 run $3: $(printf '%.2f' "$4") s"
}

CASES=("file-10M|$TEN" "file-${BIG_MIB}M|$BIG" "files-${NFILES}|$SMALL")
size_of() { if [ -d "$1" ]; then du -sb --apparent-size "$1" | cut -f1; else stat -c %s "$1"; fi; }
count_of() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 1; fi; }

# Runs are interleaved (round 1: ours, wormhole, bare; round 2: …) so that load from anything else on the machine
# falls on every tool alike. Each tool's relay is started once per case and measured per run through /proc.

# ---- ours: the sender and the recipient start together; a fixed code per run
start_ours() {
  rm -f "$WORK/relay.url"
  "$BIN" relay --port-file "$WORK/relay.url" --ports "$PORTS" > "$WORK/relay.log" 2>&1 &
  OURS_RELAY=$!; PIDS+=("$OURS_RELAY")
  for _ in $(seq 1 200); do [ -s "$WORK/relay.url" ] && break; sleep 0.05; done
  OURS_URL=$(cat "$WORK/relay.url")
}
stop_ours() { kill "$OURS_RELAY"; wait "$OURS_RELAY" 2>/dev/null || true; }
# ---- ours-wss: nginx on 127.0.0.1:8443 terminates TLS (a self-signed certificate made here) and forwards the routes
# and the WebSocket upgrades to our relay; it forwards no TCP port, and the legs are forced to WebSocket.
start_nginx() {
  local nginx; nginx=$(command -v nginx || echo /usr/sbin/nginx)
  mkdir -p "$WORK/nginx"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$WORK/nginx/key.pem" -out "$WORK/nginx/cert.pem" 2>/dev/null
  cat > "$WORK/nginx/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:8443 ssl;
    ssl_certificate $WORK/nginx/cert.pem; ssl_certificate_key $WORK/nginx/key.pem;
    location / {
      proxy_pass ${OURS_URL}; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_buffering off; proxy_request_buffering off; proxy_read_timeout 300s; proxy_send_timeout 300s;
    }
  }
}
CONF
  "$nginx" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" & NGINX=$!; PIDS+=("$NGINX")
  wait_for_port 8443
}
stop_nginx() { kill "$NGINX"; wait "$NGINX" 2>/dev/null || true; }
run_ours() { # case src run [tool] [binary] [relay url] [client args...]
  local c0 t0 t1 sp rp code="cb${RANDOM}r$3-apple-river-stone" tool="${4:-ours}" bin="${5:-$BIN}" url="${6:-$OURS_URL}"
  local extra=("${@:7}")
  fresh_out
  c0=$(proc_cpu "$OURS_RELAY")
  t0=$(now)
  timed "$WORK/s.time" "$bin" send --relay "$url" --code "$code" "${extra[@]}" "$2" > "$WORK/s.log" 2>&1 & sp=$!
  timed "$WORK/r.time" "$bin" receive --relay "$url" --code "$code" --out "$OUTDIR" "${extra[@]}" > "$WORK/r.log" 2>&1 & rp=$!
  if ! wait "$sp" || ! wait "$rp"; then kill "$sp" "$rp" 2>/dev/null; cat "$WORK/s.log" "$WORK/r.log" >&2; exit 1; fi
  t1=$(now)
  verify "$2" "$OUTDIR/$(basename "$2")"
  record "$1" "$tool" "$3" "$(echo "$t1 - $t0" | bc)" "$WORK/s.time" "$WORK/r.time" \
    "$(echo "$(proc_cpu "$OURS_RELAY") - $c0" | bc)" "$(proc_hwm "$OURS_RELAY")" "$(size_of "$2")" "$(count_of "$2")"
}

# ---- magic-wormhole: its mailbox server and transit relay on 127.0.0.1; --no-listen on both sides, so the only
# transit hint is the relay and every byte goes through it (checked in the sender's log).
start_wormhole() {
  twistd3 -n --pidfile= -l "$WORK/mailbox.log" wormhole-mailbox --port=tcp:4000:interface=127.0.0.1 \
    --channel-db="$WORK/mailbox.sqlite" & WH_MAILBOX=$!; PIDS+=("$WH_MAILBOX")
  twistd3 -n --pidfile= -l "$WORK/transit.log" transitrelay --port=tcp:4001:interface=127.0.0.1 & WH_TRANSIT=$!; PIDS+=("$WH_TRANSIT")
  wait_for_port 4000; wait_for_port 4001
}
stop_wormhole() { kill "$WH_MAILBOX" "$WH_TRANSIT"; wait "$WH_MAILBOX" "$WH_TRANSIT" 2>/dev/null || true; }
run_wormhole() { # case src run
  local c0 t0 t1 sp rp code="$((100 + RANDOM % 800))-apple-river-stone"
  local W=(wormhole --relay-url ws://127.0.0.1:4000/v1 --transit-helper tcp:127.0.0.1:4001)
  fresh_out
  c0=$(proc_cpu "$WH_TRANSIT")
  t0=$(now)
  timed "$WORK/s.time" "${W[@]}" send --no-listen --hide-progress --code "$code" "$2" > "$WORK/s.log" 2>&1 & sp=$!
  timed "$WORK/r.time" "${W[@]}" receive --no-listen --hide-progress --accept-file \
    -o "$OUTDIR/$(basename "$2")" "$code" > "$WORK/r.log" 2>&1 & rp=$!
  if ! wait "$sp" || ! wait "$rp"; then kill "$sp" "$rp" 2>/dev/null; cat "$WORK/s.log" "$WORK/r.log" >&2; exit 1; fi
  t1=$(now)
  grep -q 'relay:tcp:127.0.0.1:4001' "$WORK/s.log" || { echo "wormhole did not use the transit relay:" >&2; cat "$WORK/s.log" >&2; exit 1; }
  verify "$2" "$OUTDIR/$(basename "$2")"
  record "$1" wormhole "$3" "$(echo "$t1 - $t0" | bc)" "$WORK/s.time" "$WORK/r.time" \
    "$(echo "$(proc_cpu "$WH_TRANSIT") - $c0" | bc)" "$(proc_hwm "$WH_TRANSIT")" "$(size_of "$2")" "$(count_of "$2")"
}

# ---- bare: source socat -> relay socat (one userspace hop, like our relay) -> sink socat writing the file.
# A folder goes as an uncompressed tar stream (tar c | hop | tar x): the floor for creating that many files here.
run_bare() { # case src run
  local t0 t1 sp rp hop parent name
  parent=$(dirname "$2"); name=$(basename "$2")
  fresh_out
  if [ -d "$2" ]; then
    timed "$WORK/r.time" bash -c "socat -u -b 131072 TCP-LISTEN:5002,bind=127.0.0.1,reuseaddr - | tar -C '$OUTDIR' -xf -" & rp=$!
  else
    timed "$WORK/r.time" socat -u -b 131072 TCP-LISTEN:5002,bind=127.0.0.1,reuseaddr "CREATE:$OUTDIR/$name" & rp=$!
  fi
  wait_for_port_quiet 5002
  timed "$WORK/h.time" socat -b 131072 TCP-LISTEN:5001,bind=127.0.0.1,reuseaddr TCP:127.0.0.1:5002 & hop=$!
  wait_for_port_quiet 5001
  t0=$(now)
  if [ -d "$2" ]; then
    timed "$WORK/s.time" bash -c "tar -C '$parent' -cf - '$name' | socat -u -b 131072 - TCP:127.0.0.1:5001" & sp=$!
  else
    timed "$WORK/s.time" socat -u -b 131072 "OPEN:$2,rdonly" TCP:127.0.0.1:5001 & sp=$!
  fi
  wait "$sp"; wait "$rp"
  t1=$(now)
  wait "$hop"
  verify "$2" "$OUTDIR/$name"
  record "$1" bare "$3" "$(echo "$t1 - $t0" | bc)" "$WORK/s.time" "$WORK/r.time" "$(cpu_of "$WORK/h.time")" "$(rss_of "$WORK/h.time")" "$(size_of "$2")" "$(count_of "$2")"
}
# The bare listeners accept one connection each, so probing them with a connection would use it up: poll ss.
wait_for_port_quiet() { for _ in $(seq 1 200); do ss -ltn "sport = :$1" | grep -q LISTEN && return 0; sleep 0.02; done; return 1; }

START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for entry in "${CASES[@]}"; do
  name=${entry%%|*}; src=${entry#*|}
  case "$name" in *"$CASE_FILTER"*) ;; *) continue ;; esac
  log "case $name"
  if [ -d "$src" ]; then KEEP_OUT=1; WARM_MIB=0; else KEEP_OUT=0; WARM_MIB=$(( $(stat -c %s "$src") / 1048576 + 16 )); fi
  { has ours || has ours-jit || has ours-ws || has ours-wss; } && start_ours
  has ours-wss && start_nginx
  has wormhole && start_wormhole
  for run in $(seq 1 "$RUNS"); do
    # The 1-minute load average just before each run, recorded with it: other work on this machine shows up there.
    has ours && { RUN_LOAD=$(cut -d' ' -f1 /proc/loadavg); run_ours "$name" "$src" "$run"; }
    has ours-jit && { RUN_LOAD=$(cut -d' ' -f1 /proc/loadavg); run_ours "$name" "$src" "$run" ours-jit "$BIN_JIT"; }
    has ours-ws && { RUN_LOAD=$(cut -d' ' -f1 /proc/loadavg); run_ours "$name" "$src" "$run" ours-ws "$BIN" "$OURS_URL" --transport websocket; }
    has ours-wss && { RUN_LOAD=$(cut -d' ' -f1 /proc/loadavg); run_ours "$name" "$src" "$run" ours-wss "$BIN" https://127.0.0.1:8443 --transport websocket --trust-cert "$WORK/nginx/cert.pem"; }
    has wormhole && { RUN_LOAD=$(cut -d' ' -f1 /proc/loadavg); run_wormhole "$name" "$src" "$run"; }
    has bare && { RUN_LOAD=$(cut -d' ' -f1 /proc/loadavg); run_bare "$name" "$src" "$run"; }
  done
  has ours-wss && stop_nginx
  { has ours || has ours-jit || has ours-ws || has ours-wss; } && stop_ours
  has wormhole && stop_wormhole
  rm -rf "$WORK"/out-*; OUTDIR=""; sync
  sleep 6  # let ext4 forget the freed inodes before the next case creates files
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(( $(date +%s) - START ))

# ---------------------------------------------------------------- report
mkdir -p "$(dirname "$OUT")"
MACHINE="$WORK/machine.txt"
{
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "memory: $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "our build (ours, and our relay): ${CROC_BENCH_BUILD:-$BIN}"
  has ours-jit && echo "our build (ours-jit): ${CROC_BENCH_BUILD_JIT:-$BIN_JIT}"
  echo "dotnet: $(dotnet --version 2>/dev/null || echo '?') (runtime $(dotnet --list-runtimes 2>/dev/null | awk '/NETCore.App/ { v = $2 } END { print v }'))"
  echo "wormhole: $(wormhole --version 2>/dev/null || echo 'not installed'); transit relay $(dpkg-query -W -f '${Version}' magic-wormhole-transit-relay 2>/dev/null || echo '?'); python $(python3 -c 'import sys; print(sys.version.split()[0])')"
  echo "socat: $(socat -V 2>/dev/null | awk '/socat version/ { print $3 }')"
  echo "runs: $RUNS per case and tool (interleaved); relay ports: $PORTS; memory: $MEMORY; data: $DATA; total bench time ${ELAPSED} s"
  echo "load average (1/5/15 min) at start: $LOAD_START; at end: $LOAD_END (the machine is shared: see the per-run load column)"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
} > "$MACHINE"
python3 "$ROOT/bench/report.py" "$RESULTS" "$MACHINE" > "$OUT"
cat "$OUT"
log "wrote $OUT"
