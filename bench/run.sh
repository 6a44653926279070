#!/bin/bash
# Relay benchmark: s2sd beside Prosody, on one machine, all on loopback.
#
#   bash bench/run.sh
#
# Builds s2sd and the driver, starts a DNS zone server (bench/dnsd) and two
# s2sd instances, a.test and b.test, federating over STARTTLS with
# self-signed certificates and dialback (the default policy), each with one
# component: send.a.test on A, recv.b.test on B. The driver sends from
# send.a.test to recv.b.test:
#
#   100B/w500    100-byte bodies, 500 in flight   (throughput)
#   4KiB/w500    4 KiB bodies, 500 in flight      (throughput)
#   100B/w1      100-byte bodies, one at a time   (latency)
#
# then the same with two Prosody instances (internal/interop/peers), and
# prints both, the ratios s2sd/Prosody, and the resident memory (VmRSS) of
# each daemon after start and after the runs.
#
# Environment (defaults in brackets):
#   N=100000       messages per throughput scenario
#   NLAT=5000      messages in the latency scenario
#   WARMUP=1000    messages sent and awaited before each measurement
#   PROSODY=1      0 skips Prosody
#   KEEP=0         1 keeps the work directory (configs, logs, results)
#   DRIVER_FLAGS   more driver flags, e.g. "-cpuprofile /tmp/driver.prof"
#   PPROF=0        1 records 5 s CPU profiles of both s2sd during the first
#                  scenario (a.prof, b.prof in the work directory; KEEP=1),
#                  and their allocations since start after the runs
#                  (a.allocs, b.allocs)
#   ONLY           run only the scenarios whose names contain this, e.g.
#                  ONLY=4KiB or ONLY=w1
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${N:-100000}; NLAT=${NLAT:-5000}; WARMUP=${WARMUP:-1000}; PROSODY=${PROSODY:-1}; PPROF=${PPROF:-0}
work=$(mktemp -d "${TMPDIR:-/tmp}/s2sd-bench.XXXXXX")
. "$here/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

scenarios=()
for s in "100B/w500:-size 100 -window 500 -n $N" "4KiB/w500:-size 4096 -window 500 -n $N" "100B/w1:-size 100 -window 1 -n $NLAT"; do
  case ${s%%:*} in *"${ONLY:-}"*) scenarios+=("${s#*:}") ;; esac
done
[ ${#scenarios[@]} -gt 0 ] || { echo "bench: no scenario matches ONLY=$ONLY" >&2; exit 2; }

# bench_pair SERVER A-COMP-PORT B-COMP-PORT A-PID B-PID: run every scenario,
# one JSON line each in $work/SERVER.jsonl.
bench_pair() {
  local server=$1 ca=$2 cb=$3 pids=$4,$5 s
  for s in "${scenarios[@]}"; do
    # shellcheck disable=SC2086
    "$work/bin/driver" -server "$server" -a "127.0.0.1:$ca" -b "127.0.0.1:$cb" \
      -from send.a.test -secret-a secret-a -to recv.b.test -secret-b secret-b \
      -warmup "$WARMUP" -pids "$pids" ${DRIVER_FLAGS:-} $s >>"$work/$server.jsonl" || log "bench: driver failed ($server $s)"
  done
}

s2sd_config() { # DOMAIN S2S-PORT COMP-PORT COMPONENT SECRET DNS-PORT
  cat <<EOF
[server]
domains = ["$1"]
state_dir = "$work/$1/state"
log_level = "warn"

[s2s]
listen = "127.0.0.1:$2"
dns = ["127.0.0.1:$6"]

[components]
listen = "127.0.0.1:$3"

[[component]]
domain = "$4"
secret = "$5"

[shutdown]
grace = "2s"
EOF
  if [ -n "${7:-}" ]; then printf '\n[metrics]\nlisten = "127.0.0.1:%s"\npprof = true\n' "$7"; fi
}

command -v ss >/dev/null || die "ss (iproute2) is needed"
build
log "work directory: $work"
log "N=$N NLAT=$NLAT WARMUP=$WARMUP, $(nproc) CPUs"

# --- s2sd -------------------------------------------------------------------
dns=$(freeport); a_s2s=$(freeport); a_comp=$(freeport); b_s2s=$(freeport); b_comp=$(freeport)
a_mon=""; b_mon=""
if [ "$PPROF" = 1 ]; then a_mon=$(freeport); b_mon=$(freeport); fi
start_dnsd dns-s2sd "$dns" \
  -srv "a.test=127.0.0.1:$a_s2s" -srv "send.a.test=127.0.0.1:$a_s2s" \
  -srv "b.test=127.0.0.1:$b_s2s" -srv "recv.b.test=127.0.0.1:$b_s2s"
start_s2sd a.test "$(s2sd_config a.test "$a_s2s" "$a_comp" send.a.test secret-a "$dns" "$a_mon")" "$a_s2s" "$a_comp"; pa=$s2sd_pid
start_s2sd b.test "$(s2sd_config b.test "$b_s2s" "$b_comp" recv.b.test secret-b "$dns" "$b_mon")" "$b_s2s" "$b_comp"; pb=$s2sd_pid
sleep 1
mem_s2sd_idle="A $(rss "$pa") KiB, B $(rss "$pb") KiB"
log "s2sd idle after start: $mem_s2sd_idle"
prof_pids=()
if [ "$PPROF" = 1 ]; then
  (sleep "${PROFILE_DELAY:-1}"; curl -s -o "$work/a.prof" "http://127.0.0.1:$a_mon/debug/pprof/profile?seconds=5") &
  prof_pids+=($!)
  (sleep "${PROFILE_DELAY:-1}"; curl -s -o "$work/b.prof" "http://127.0.0.1:$b_mon/debug/pprof/profile?seconds=5") &
  prof_pids+=($!)
fi
bench_pair s2sd "$a_comp" "$b_comp" "$pa" "$pb"
for p in ${prof_pids[@]+"${prof_pids[@]}"}; do wait "$p" || true; done
if [ "$PPROF" = 1 ]; then
  curl -s -o "$work/a.allocs" "http://127.0.0.1:$a_mon/debug/pprof/allocs" || true
  curl -s -o "$work/b.allocs" "http://127.0.0.1:$b_mon/debug/pprof/allocs" || true
fi
sleep 1
mem_s2sd_after="A $(rss "$pa") KiB (peak $(hwm "$pa")), B $(rss "$pb") KiB (peak $(hwm "$pb"))"
log "s2sd after the runs: $mem_s2sd_after"
stop "$pa"; stop "$pb"

# --- Prosody ----------------------------------------------------------------
mem_pros_idle="skipped"; mem_pros_after="skipped"
if [ "$PROSODY" = 1 ]; then
  command -v prosody >/dev/null || die "prosody is not installed: $peers/install.sh, or PROSODY=0"
  pdns=$(freeport)
  pa_c2s=$(freeport); pa_s2s=$(freeport); pa_comp=$(freeport)
  pb_c2s=$(freeport); pb_s2s=$(freeport); pb_comp=$(freeport)
  start_dnsd dns-prosody "$pdns" \
    -srv "a.test=127.0.0.1:$pa_s2s" -srv "send.a.test=127.0.0.1:$pa_s2s" \
    -srv "b.test=127.0.0.1:$pb_s2s" -srv "recv.b.test=127.0.0.1:$pb_s2s"
  prosody_dirs+=("$work/prosody-a")
  ppa=$("$peers/prosody-up.sh" a.test "$work/prosody-a" --c2s "$pa_c2s" --s2s "$pa_s2s" \
    --component "$pa_comp" --component-name send.a.test --component-secret secret-a \
    --dns "127.0.0.1:$pdns" --log-level warn)
  prosody_dirs+=("$work/prosody-b")
  ppb=$("$peers/prosody-up.sh" b.test "$work/prosody-b" --c2s "$pb_c2s" --s2s "$pb_s2s" \
    --component "$pb_comp" --component-name recv.b.test --component-secret secret-b \
    --dns "127.0.0.1:$pdns" --log-level warn)
  sleep 1
  mem_pros_idle="A $(rss "$ppa") KiB, B $(rss "$ppb") KiB"
  log "Prosody idle after start: $mem_pros_idle"
  bench_pair prosody "$pa_comp" "$pb_comp" "$ppa" "$ppb"
  sleep 1
  mem_pros_after="A $(rss "$ppa") KiB (peak $(hwm "$ppa")), B $(rss "$ppb") KiB (peak $(hwm "$ppb"))"
  log "Prosody after the runs: $mem_pros_after"
  "$peers/prosody-down.sh" "$work/prosody-a"; "$peers/prosody-down.sh" "$work/prosody-b"
fi

# --- Report -----------------------------------------------------------------
echo
echo "== relay benchmark: N=$N NLAT=$NLAT WARMUP=$WARMUP, $(nproc) CPUs, $(go env GOVERSION), prosody $(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo "?")"
echo "-- s2sd"
"$work/bin/driver" summary "$work/s2sd.jsonl"
if [ "$PROSODY" = 1 ]; then
  echo "-- Prosody"
  "$work/bin/driver" summary "$work/prosody.jsonl"
  echo "-- s2sd / Prosody"
  "$work/bin/driver" compare "$work/s2sd.jsonl" "$work/prosody.jsonl"
fi
echo "-- resident memory (VmRSS)"
echo "s2sd    idle after start: $mem_s2sd_idle"
echo "s2sd    after the runs:   $mem_s2sd_after"
echo "Prosody idle after start: $mem_pros_idle"
echo "Prosody after the runs:   $mem_pros_after"
echo "-- JSON"
cat "$work/s2sd.jsonl" "$work"/prosody.jsonl 2>/dev/null || true
