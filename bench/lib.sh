# Shared by run.sh and idle.sh: sourced, not run.
#
# Needs: $work (a temp directory), $root (the module root). Provides build,
# free ports, a dnsd and s2sd launcher, VmRSS, and cleanup of everything
# started through them (call cleanup from the caller's EXIT trap).

pids=()          # processes we started, stopped by cleanup
prosody_dirs=()  # prosody-up.sh work directories, stopped by cleanup
peers=$root/internal/interop/peers

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

build() {
  mkdir -p "$work/bin"
  log "building s2sd, driver, dnsd, idle, profsum..."
  (cd "$root" && go build -o "$work/bin/s2sd" ./cmd/s2sd &&
    go build -o "$work/bin/driver" ./bench/driver &&
    go build -o "$work/bin/dnsd" ./bench/dnsd &&
    go build -o "$work/bin/idle" ./bench/idle &&
    go build -o "$work/bin/profsum" ./bench/profsum) || die "build failed"
}

# freeport prints a port that no TCP or UDP socket uses (listening or not),
# below the kernel's ephemeral range (32768 up) so that no outgoing connection
# takes it meanwhile, and that this script has not handed out yet.
taken=" "
freeport() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    case $taken in *" $p "*) continue ;; esac
    if ! ss -Hantu "sport = :$p" | grep -q .; then
      taken="$taken$p "
      echo "$p"
      return
    fi
  done
  die "no free port"
}

# wait_port PORT: wait until something listens on 127.0.0.1:PORT (TCP).
wait_port() {
  for _ in $(seq 300); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.05
  done
  return 1
}

# start_dnsd NAME PORT DNSD-ARGS...: a zone server on 127.0.0.1:PORT.
start_dnsd() {
  local name=$1 port=$2; shift 2
  "$work/bin/dnsd" -addr "127.0.0.1:$port" "$@" 2>"$work/$name.log" &
  pids+=($!)
  wait_port "$port" || die "dnsd $name did not start: $(cat "$work/$name.log")"
}

# start_s2sd NAME CONFIG-TEXT PORT...: run s2sd on a config written to
# $work/NAME/, wait until it listens on each PORT, set s2sd_pid. (The bench
# runs s2sd at log level warn, so the "s2sd started" line is not written.)
start_s2sd() {
  local name=$1 cfg=$2 dir=$work/$1 p
  shift 2
  mkdir -p "$dir"
  printf '%s\n' "$cfg" >"$dir/s2sd.toml"
  "$work/bin/s2sd" -config "$dir/s2sd.toml" 2>"$dir/s2sd.log" &
  s2sd_pid=$!
  pids+=($s2sd_pid)
  for p in "$@"; do
    wait_port "$p" || die "s2sd $name did not start: $(tail -5 "$dir/s2sd.log")"
  done
  kill -0 "$s2sd_pid" 2>/dev/null || die "s2sd $name exited: $(tail -5 "$dir/s2sd.log")"
}

# stop PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# rss PID: resident memory in KiB (VmRSS), or "?".
rss() { awk '/^VmRSS:/ {print $2; f=1} END {if (!f) print "?"}' "/proc/$1/status" 2>/dev/null || echo "?"; }
# hwm PID: peak resident memory in KiB (VmHWM), or "?".
hwm() { awk '/^VmHWM:/ {print $2; f=1} END {if (!f) print "?"}' "/proc/$1/status" 2>/dev/null || echo "?"; }

cleanup() {
  local rc=$?
  for d in ${prosody_dirs[@]+"${prosody_dirs[@]}"}; do
    "$peers/prosody-down.sh" "$d" 2>/dev/null || true
  done
  for p in ${pids[@]+"${pids[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
  for p in ${pids[@]+"${pids[@]}"}; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  if [ "${KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
    log "logs and configs kept in $work"
  else
    rm -rf "$work"
  fi
}
