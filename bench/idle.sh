#!/bin/bash
# Idle memory benchmark: what an idle s2s stream and an idle component cost s2sd.
#
#   bash bench/idle.sh
#
# (a) s2s: starts s2sd as a.test and bench/idle as M remote servers
#     d1.test … dM.test in one process (one s2s.Server and Dialer; the zone
#     points every _xmpp-server._tcp.dN.test at it). idle opens one stream
#     from each dN.test to a.test: STARTTLS, dialback, s2sd verifying each
#     key by connecting back to dN.test. s2sd then holds M authenticated
#     inbound streams.
# (b) components: starts a fresh s2sd whose config lists M components
#     c1.a.test … cM.a.test and connects all of them.
# (c) outbound s2s streams: a fresh s2sd as in (a); bench/idle hosts
#     d1.test … dM.test again and connects one component, c1.a.test,
#     through which s2sd writes to someone at each dN.test in turn: s2sd
#     then holds M authenticated outbound streams (STARTTLS, dialback,
#     XEP-0198), and what it keeps for each remote domain it has written to.
# Each reports s2sd's VmRSS before and after, the difference per stream, and
# the Go heap and goroutines per stream from s2sd's metrics, and for s2s
# streams how many are parked (s2sd_streams_parked).
#
# Environment: M=1000 (lowered to what ulimit -n allows), KEEP=0 (1 keeps
# the work directory).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
M=${M:-1000}
work=$(mktemp -d "${TMPDIR:-/tmp}/s2sd-idle.XXXXXX")
. "$here/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v ss >/dev/null || die "ss (iproute2) is needed"
command -v openssl >/dev/null || die "openssl is needed"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fds=$(ulimit -n)
if [ "$fds" != unlimited ] && [ $((M + 200)) -gt "$fds" ]; then
  M=$((fds - 200))
  log "ulimit -n is $fds: M lowered to $M"
fi
build

dns=$(freeport); s2s_port=$(freeport); comp_port=$(freeport); metrics_port=$(freeport); idle_port=$(freeport)

# One certificate for a.test and every component under it, so that s2sd does
# not generate M self-signed ones at start.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=a.test" \
  -addext "subjectAltName=DNS:a.test,DNS:*.a.test" \
  -keyout "$work/a.key" -out "$work/a.crt" 2>/dev/null

{
  echo "idle.test. 3600 IN A 127.0.0.1"
  for i in $(seq "$M"); do
    echo "_xmpp-server._tcp.d$i.test. 3600 IN SRV 0 0 $idle_port idle.test."
  done
} >"$work/zone"
start_dnsd dnsd "$dns" -srv "a.test=127.0.0.1:$s2s_port" -srv "c1.a.test=127.0.0.1:$s2s_port" -zone "$work/zone"

# s2sd_config COMPONENTS: a.test with COMPONENTS components c1.a.test …
s2sd_config() {
  cat <<EOF
[server]
domains = ["a.test"]
state_dir = "$work/state"
log_level = "warn"
gc_heap_floor_mib = ${GC_FLOOR:-0}

[s2s]
listen = "127.0.0.1:$s2s_port"
dns = ["127.0.0.1:$dns"]
idle_timeout = "1h"
max_connections = $((2 * M + 100))
max_connections_per_ip = $((2 * M + 100))

[[certificate]]
domains = ["a.test", "*.a.test"]
cert = "$work/a.crt"
key = "$work/a.key"

[components]
listen = "127.0.0.1:$comp_port"

[metrics]
listen = "127.0.0.1:$metrics_port"
pprof = true
EOF
  for i in $(seq "$1"); do
    printf '\n[[component]]\ndomain = "c%d.a.test"\nsecret = "secret"\n' "$i"
  done
}

results=()

log "== (a) $M idle s2s streams"
start_s2sd s2s "$(s2sd_config 1)" "$s2s_port" "$comp_port" "$metrics_port"
pid=$s2sd_pid
"$work/bin/idle" s2s -pid "$pid" -m "$M" -target a.test -listen "127.0.0.1:$idle_port" \
  -dns "127.0.0.1:$dns" -metrics "http://127.0.0.1:$metrics_port/metrics" -heapprofile "$work/s2s-heap.prof" >"$work/s2s.json" ||
  log "bench: idle s2s failed"
results+=("$(cat "$work/s2s.json")")
stop "$pid"

log "== (b) $M idle components"
start_s2sd comp "$(s2sd_config "$M")" "$s2s_port" "$comp_port" "$metrics_port"
pid=$s2sd_pid
"$work/bin/idle" comp -pid "$pid" -m "$M" -addr "127.0.0.1:$comp_port" -domain 'c%d.a.test' \
  -secret secret -metrics "http://127.0.0.1:$metrics_port/metrics" -heapprofile "$work/comp-heap.prof" >"$work/comp.json" ||
  log "bench: idle comp failed"
results+=("$(cat "$work/comp.json")")
stop "$pid"

log "== (c) $M idle outbound s2s streams"
start_s2sd out "$(s2sd_config 1)" "$s2s_port" "$comp_port" "$metrics_port"
pid=$s2sd_pid
"$work/bin/idle" out -pid "$pid" -m "$M" -addr "127.0.0.1:$comp_port" -domain c1.a.test -secret secret \
  -listen "127.0.0.1:$idle_port" -dns "127.0.0.1:$dns" \
  -metrics "http://127.0.0.1:$metrics_port/metrics" -heapprofile "$work/out-heap.prof" >"$work/out.json" ||
  log "bench: idle out failed"
results+=("$(cat "$work/out.json")")
stop "$pid"

echo
echo "== idle memory: M=$M, $(go env GOVERSION)"
for r in "${results[@]}"; do echo "$r"; done
