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
#   gaps         bursts with idle gaps (s2sd only): a fresh s2sd pair with
#                negotiation_timeout 2s and a component more on each side,
#                a driver in each direction at once, each sending BURSTS
#                bursts of BURST 100-byte messages separated by GAP of
#                quiet (longer than the negotiation timeout). Reports each
#                burst, lost and duplicated messages over all of them, and
#                how many outbound stanza streams came up on each side
#                ("stream ready" in the daemons' logs): 1 per direction,
#                or the scenario fails.
#
# Environment (defaults in brackets):
#   N=100000       messages per throughput scenario
#   NLAT=5000      messages in the latency scenario
#   WARMUP=1000    messages sent and awaited before each measurement
#   PROSODY=1      0 skips Prosody
#   KEEP=0         1 keeps the work directory (configs, logs, results)
#   CLUSTER=0      1 makes each s2sd a one-node cluster (embedded NATS): what
#                  the cluster's wrappers cost a node. 3 serves a.test with
#                  a cluster of three nodes, A1 to A3 (embedded NATS, routes
#                  to each other); the SRV records of a.test and send.a.test
#                  name A1. Once the cluster is settled, the component
#                  send.a.test attaches to the node after the one that owns
#                  recv.b.test (driver owner), so that every stanza crosses
#                  nodes over NATS. CPU is reported for each node. B is one
#                  s2sd, as usual. Not with PPROF=1.
#   DURABILITY=node  the cluster's durability with CLUSTER=3 (or replicated)
#   DRIVER_FLAGS   more driver flags, e.g. "-cpuprofile /tmp/driver.prof"
#   PPROF=0        1 records 5 s CPU profiles of both s2sd during the first
#                  scenario (a.prof, b.prof in the work directory; KEEP=1),
#                  and their allocations since start after the runs
#                  (a.allocs, b.allocs), and prints where the CPU went
#                  (bench/profsum). For the 100-byte load alone:
#                  N=1000000 ONLY=100B/w500 PPROF=1 PROSODY=0
#   ONLY           run only the scenarios whose names contain this, e.g.
#                  ONLY=4KiB, ONLY=w1 or ONLY=gaps
#   BURSTS=5 BURST=20000 GAP=8s NEGOTIATION=2s IDLE=30s
#                  the gaps scenario: bursts, messages per burst and
#                  direction, quiet between bursts, negotiation_timeout and
#                  idle_timeout of both s2sd
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${N:-100000}; NLAT=${NLAT:-5000}; WARMUP=${WARMUP:-1000}; PROSODY=${PROSODY:-1}; PPROF=${PPROF:-0}
BURSTS=${BURSTS:-5}; BURST=${BURST:-20000}; GAP=${GAP:-8s}; NEGOTIATION=${NEGOTIATION:-2s}; IDLE=${IDLE:-30s}
work=$(mktemp -d "${TMPDIR:-/tmp}/s2sd-bench.XXXXXX")
. "$here/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

scenarios=()
for s in "100B/w500:-size 100 -window 500 -n $N" "4KiB/w500:-size 4096 -window 500 -n $N" "100B/w1:-size 100 -window 1 -n $NLAT"; do
  case ${s%%:*} in *"${ONLY:-}"*) scenarios+=("${s#*:}") ;; esac
done
gaps=0
case gaps in *"${ONLY:-}"*) gaps=1 ;; esac
[ ${#scenarios[@]} -gt 0 ] || [ $gaps = 1 ] || { echo "bench: no scenario matches ONLY=$ONLY" >&2; exit 2; }

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

# s2sd_config DOMAIN S2S-PORT COMP-PORT COMPONENT SECRET DNS-PORT [METRICS-PORT]
# The gaps scenario also sets cfg_dir (the work subdirectory, default
# DOMAIN), cfg_log (log level), cfg_s2s (more [s2s] lines) and cfg_more
# (more tables).
s2sd_config() {
  cat <<EOF
[server]
domains = ["$1"]
state_dir = "$work/${cfg_dir:-$1}/state"
log_level = "${cfg_log:-warn}"
${GC_FLOOR:+gc_heap_floor_mib = $GC_FLOOR}

[s2s]
listen = "127.0.0.1:$2"
dns = ["127.0.0.1:$6"]
${cfg_s2s:-}

[components]
listen = "127.0.0.1:$3"

[[component]]
domain = "$4"
secret = "$5"
${cfg_more:-}

[shutdown]
grace = "2s"
EOF
  if [ -n "${7:-}" ]; then printf '\n[metrics]\nlisten = "127.0.0.1:%s"\npprof = true\n' "$7"; fi
  # CLUSTER=1: each daemon is a one-node cluster (embedded NATS), to
  # measure what the cluster's wrappers cost a node. CLUSTER=3 sets
  # cfg_cluster for A's nodes.
  if [ "${CLUSTER:-0}" = 1 ]; then printf '\n[cluster]\nname = "%s"\nlisten = "127.0.0.1:%s"\n' "${cfg_dir:-$1}" "$(freeport)"; fi
  if [ -n "${cfg_cluster:-}" ]; then printf '\n[cluster]\n%s\n' "$cfg_cluster"; fi
}

command -v ss >/dev/null || die "ss (iproute2) is needed"
build
log "work directory: $work"
log "N=$N NLAT=$NLAT WARMUP=$WARMUP, $(nproc) CPUs"

# --- s2sd -------------------------------------------------------------------
mem_s2sd_idle="skipped"; mem_s2sd_after="skipped"; cluster_report=""
[ "${CLUSTER:-0}" != 3 ] || [ "$PPROF" != 1 ] || die "PPROF=1 is not for CLUSTER=3"
if [ ${#scenarios[@]} -gt 0 ]; then
dns=$(freeport); b_s2s=$(freeport); b_comp=$(freeport)
a_mon=""; b_mon=""
if [ "$PPROF" = 1 ]; then a_mon=$(freeport); b_mon=$(freeport); fi
if [ "${CLUSTER:-0}" = 3 ]; then
  # A1 to A3 serve a.test; the metrics listeners give their status pages
  # (driver owner).
  an=(1 2 3); as2s=(); acomp=(); amon=(); aroute=(); apid=()
  for i in "${an[@]}"; do
    as2s[i]=$(freeport); acomp[i]=$(freeport); amon[i]=$(freeport); aroute[i]=$(freeport)
  done
  start_dnsd dns-s2sd "$dns" \
    -srv "a.test=127.0.0.1:${as2s[1]}" -srv "send.a.test=127.0.0.1:${as2s[1]}" \
    -srv "b.test=127.0.0.1:$b_s2s" -srv "recv.b.test=127.0.0.1:$b_s2s"
  for i in "${an[@]}"; do
    routes=""
    for j in "${an[@]}"; do
      [ "$j" = "$i" ] || routes="$routes${routes:+, }\"nats://127.0.0.1:${aroute[j]}\""
    done
    cfg_dir=a$i cfg_cluster=$(printf 'name = "a%s"\nlisten = "127.0.0.1:%s"\nroutes = [%s]\ndurability = "%s"' \
      "$i" "${aroute[i]}" "$routes" "${DURABILITY:-node}")
    # A node listens once the cluster has formed: wait for all three after.
    start_s2sd "a$i" "$(s2sd_config a.test "${as2s[i]}" "${acomp[i]}" send.a.test secret-a "$dns" "${amon[i]}")"
    apid[i]=$s2sd_pid
  done
  cfg_dir=""; cfg_cluster=""
  for i in "${an[@]}"; do
    for p in "${as2s[i]}" "${acomp[i]}"; do
      wait_port "$p" || die "s2sd a$i did not start: $(tail -5 "$work/a$i/s2sd.log")"
    done
  done
  start_s2sd b.test "$(s2sd_config b.test "$b_s2s" "$b_comp" recv.b.test secret-b "$dns" "$b_mon")" "$b_s2s" "$b_comp"; pb=$s2sd_pid
  owner=$("$work/bin/driver" owner -domain recv.b.test \
    "http://127.0.0.1:${amon[1]}/status.json" "http://127.0.0.1:${amon[2]}/status.json" "http://127.0.0.1:${amon[3]}/status.json") ||
    die "the cluster did not settle"
  entry=$((owner % 3 + 1))
  a_comp=${acomp[entry]}; pa="${apid[1]}+${apid[2]}+${apid[3]}"
  cluster_report="cluster: a.test on A1 to A3 (durability ${DURABILITY:-node}); A$owner owns recv.b.test and dials it; send.a.test attaches to A$entry: every stanza crosses from A$entry to A$owner over NATS"
  log "$cluster_report"
  sleep 1
  mem_s2sd_idle="A1 $(rss "${apid[1]}") KiB, A2 $(rss "${apid[2]}") KiB, A3 $(rss "${apid[3]}") KiB, B $(rss "$pb") KiB"
else
  a_s2s=$(freeport); a_comp=$(freeport)
  start_dnsd dns-s2sd "$dns" \
    -srv "a.test=127.0.0.1:$a_s2s" -srv "send.a.test=127.0.0.1:$a_s2s" \
    -srv "b.test=127.0.0.1:$b_s2s" -srv "recv.b.test=127.0.0.1:$b_s2s"
  start_s2sd a.test "$(s2sd_config a.test "$a_s2s" "$a_comp" send.a.test secret-a "$dns" "$a_mon")" "$a_s2s" "$a_comp"; pa=$s2sd_pid
  start_s2sd b.test "$(s2sd_config b.test "$b_s2s" "$b_comp" recv.b.test secret-b "$dns" "$b_mon")" "$b_s2s" "$b_comp"; pb=$s2sd_pid
  sleep 1
  mem_s2sd_idle="A $(rss "$pa") KiB, B $(rss "$pb") KiB"
fi
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
if [ "${CLUSTER:-0}" = 3 ]; then
  mem_s2sd_after=""
  for i in "${an[@]}"; do
    mem_s2sd_after="${mem_s2sd_after}A$i $(rss "${apid[i]}") KiB (peak $(hwm "${apid[i]}")), "
  done
  mem_s2sd_after="${mem_s2sd_after}B $(rss "$pb") KiB (peak $(hwm "$pb"))"
  for i in "${an[@]}"; do stop "${apid[i]}"; done
else
  mem_s2sd_after="A $(rss "$pa") KiB (peak $(hwm "$pa")), B $(rss "$pb") KiB (peak $(hwm "$pb"))"
  stop "$pa"
fi
log "s2sd after the runs: $mem_s2sd_after"
stop "$pb"
fi

# --- s2sd, bursts with idle gaps -------------------------------------------
# A fresh pair, so that every stream in its logs is this scenario's.
# Traffic goes both ways at once, send.a.test -> recv.b.test and
# send.b.test -> recv.a.test, so that each daemon has one outbound stanza
# stream (and one inbound) to keep across the gaps.
gaps_report=""; gaps_failed=0
if [ $gaps = 1 ]; then
  gdns=$(freeport); ga_s2s=$(freeport); ga_comp=$(freeport); gb_s2s=$(freeport); gb_comp=$(freeport)
  ga_mon=$(freeport); gb_mon=$(freeport)
  start_dnsd dns-gaps "$gdns" \
    -srv "a.test=127.0.0.1:$ga_s2s" -srv "send.a.test=127.0.0.1:$ga_s2s" -srv "recv.a.test=127.0.0.1:$ga_s2s" \
    -srv "b.test=127.0.0.1:$gb_s2s" -srv "recv.b.test=127.0.0.1:$gb_s2s" -srv "send.b.test=127.0.0.1:$gb_s2s"
  # Log level info for the "stream ready" lines (nothing is logged per
  # stanza); an idle timeout well above the gap, so a stream that ends
  # during a gap is a defect, not the idle rule.
  cfg_log=info
  cfg_s2s=$(printf 'negotiation_timeout = "%s"\nidle_timeout = "%s"' "$NEGOTIATION" "$IDLE")
  cfg_dir=gaps-a cfg_more=$(printf '\n[[component]]\ndomain = "recv.a.test"\nsecret = "secret-ra"')
  start_s2sd gaps-a "$(s2sd_config a.test "$ga_s2s" "$ga_comp" send.a.test secret-a "$gdns" "$ga_mon")" "$ga_s2s" "$ga_comp"; gpa=$s2sd_pid
  cfg_dir=gaps-b cfg_more=$(printf '\n[[component]]\ndomain = "send.b.test"\nsecret = "secret-sb"')
  start_s2sd gaps-b "$(s2sd_config b.test "$gb_s2s" "$gb_comp" recv.b.test secret-b "$gdns" "$gb_mon")" "$gb_s2s" "$gb_comp"; gpb=$s2sd_pid
  cfg_log=""; cfg_s2s=""; cfg_dir=""; cfg_more=""
  log "gaps: $BURSTS bursts of $BURST messages each way, $GAP apart, negotiation_timeout $NEGOTIATION"
  gflags=(-warmup "$WARMUP" -size 100 -window 500 -n "$BURST" -bursts "$BURSTS" -gap "$GAP")
  "$work/bin/driver" -server s2sd -scenario gaps-ab -a "127.0.0.1:$ga_comp" -b "127.0.0.1:$gb_comp" \
    -from send.a.test -secret-a secret-a -to recv.b.test -secret-b secret-b \
    "${gflags[@]}" >"$work/gaps-ab.jsonl" &
  gd1=$!
  "$work/bin/driver" -server s2sd -scenario gaps-ba -a "127.0.0.1:$gb_comp" -b "127.0.0.1:$ga_comp" \
    -from send.b.test -secret-a secret-sb -to recv.a.test -secret-b secret-ra \
    "${gflags[@]}" >"$work/gaps-ba.jsonl" &
  gd2=$!
  wait "$gd1" || log "bench: driver failed (gaps a->b)"
  wait "$gd2" || log "bench: driver failed (gaps b->a)"
  cat "$work/gaps-ab.jsonl" "$work/gaps-ba.jsonl" >>"$work/s2sd.jsonl"
  # Outbound stanza streams are the "stream ready" lines whose remote is
  # the other side's receiving component (dialback verifications go to
  # the sending one); any outbound stream that ended before shutdown is
  # counted too.
  streams() { grep 'msg="stream ready"' "$work/$1/s2sd.log" | grep -c " remote=$2 " || true; }
  ended() { grep -cE 'msg="(outbound stream ended|closing idle stream|stream lost with unacknowledged|no acknowledgement from the peer)' "$work/$1/s2sd.log" || true; }
  gauge() { curl -s "http://127.0.0.1:$1/metrics" | awk -v d="$2" '$1 == "s2sd_streams{dir=\""d"\"}" {print $2; f=1} END {if (!f) print "?"}'; }
  out_ab=$(streams gaps-a recv.b.test); out_ba=$(streams gaps-b recv.a.test)
  gaps_report=$(printf 'gaps: outbound stanza streams that came up: a->b %s, b->a %s (want 1 each); outbound streams ended before shutdown: A %s, B %s; s2sd_streams at the end: A out %s in %s, B out %s in %s' \
    "$out_ab" "$out_ba" "$(ended gaps-a)" "$(ended gaps-b)" \
    "$(gauge "$ga_mon" out)" "$(gauge "$ga_mon" in)" "$(gauge "$gb_mon" out)" "$(gauge "$gb_mon" in)")
  log "$gaps_report"
  if [ "$out_ab" != 1 ] || [ "$out_ba" != 1 ]; then
    gaps_report="$gaps_report
gaps: FAIL: an outbound stream came up more than once (or never)"; gaps_failed=1
  fi
  if ! grep '/all"' "$work/gaps-ab.jsonl" "$work/gaps-ba.jsonl" | grep -c '"lost":0,"duplicated":0,"errors":0' | grep -qx 2; then
    gaps_report="$gaps_report
gaps: FAIL: messages lost, duplicated or bounced (see the /all lines)"; gaps_failed=1
  fi
  stop "$gpa"; stop "$gpb"
fi

# --- Prosody ----------------------------------------------------------------
mem_pros_idle="skipped"; mem_pros_after="skipped"
if [ "$PROSODY" = 1 ] && [ ${#scenarios[@]} -gt 0 ]; then
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
[ -z "$cluster_report" ] || echo "$cluster_report"
"$work/bin/driver" summary "$work/s2sd.jsonl"
[ -z "$gaps_report" ] || echo "$gaps_report"
if [ "$PROSODY" = 1 ] && [ ${#scenarios[@]} -gt 0 ]; then
  echo "-- Prosody"
  "$work/bin/driver" summary "$work/prosody.jsonl"
  echo "-- s2sd / Prosody"
  grep -v '"scenario":"gaps' "$work/s2sd.jsonl" >"$work/s2sd-relay.jsonl" || true
  "$work/bin/driver" compare "$work/s2sd-relay.jsonl" "$work/prosody.jsonl"
fi
if [ ${#scenarios[@]} -gt 0 ]; then
  echo "-- resident memory (VmRSS)"
  echo "s2sd    idle after start: $mem_s2sd_idle"
  echo "s2sd    after the runs:   $mem_s2sd_after"
  echo "Prosody idle after start: $mem_pros_idle"
  echo "Prosody after the runs:   $mem_pros_after"
fi
if [ "$PPROF" = 1 ] && [ -s "$work/a.prof" ]; then
  echo "-- where the CPU went (bench/profsum; KEEP=1 keeps a.prof, b.prof)"
  "$work/bin/profsum" -bin "$work/bin/s2sd" "$work/a.prof" "$work/b.prof" || true
fi
echo "-- JSON"
cat "$work/s2sd.jsonl" "$work"/prosody.jsonl 2>/dev/null || true
[ "$gaps_failed" = 0 ] || exit 1
