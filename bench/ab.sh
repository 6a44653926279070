#!/usr/bin/env bash
# ab.sh: the same benchmark on another revision and on this tree, one after
# the other, several times. On a machine whose speed drifts from hour to
# hour (a shared virtual machine), only runs made side by side compare.
#
#   bash bench/ab.sh REV [ROUNDS]          # run.sh (its environment applies: N, ONLY, PROSODY, ...)
#   IDLE=1 bash bench/ab.sh REV [ROUNDS]   # idle.sh (M, ...)
#
# REV is checked out in a temporary worktree, removed on exit. Each round
# runs REV first, then this tree, and prints one line per run: the tree,
# then the results line of each scenario (run.sh) or the per-stream figures
# (idle.sh: VmRSS over the last nine tenths, Go heap in use, live objects).
set -euo pipefail

rev=${1:?usage: bench/ab.sh REV [ROUNDS]}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
base=$(git -C "$root" rev-parse --short "$rev")
wt=$(mktemp -d "${TMPDIR:-/tmp}/s2sd-ab.XXXXXX")
cleanup() { git -C "$root" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
git -C "$root" worktree add --detach --force "$wt" "$rev" >/dev/null 2>&1

one() { # one tree's run: $1 the tree, $2 its name
  if [ "${IDLE:-0}" = 1 ]; then
    (cd "$1" && bash bench/idle.sh 2>&1) | awk -v t="$2" '
      /^idle s2s:|^idle comp:|^idle out:/ {
        m = $2; sub(":", "", m)
        rss = $0; sub(/.* with all: /, "", rss); sub(/ KiB per stream.*/, "", rss)
        heap = $0; sub(/.*Go heap in use [0-9]+ -> [0-9]+ KiB = /, "", heap); sub(/ KiB.*/, "", heap)
        obj = $0; sub(/.*\(objects /, "", obj); sub(/ KiB\).*/, "", obj)
        printf "%-12s %-5s VmRSS %s KiB/stream, heap in use %s, objects %s\n", t, m, rss, heap, obj
      }'
  else
    (cd "$1" && bash bench/run.sh 2>&1) | awk -v t="$2" '/^s2sd .* msgs in / && !seen[$2]++ { printf "%-12s %s\n", t, $0 }'
  fi
}

for i in $(seq "$rounds"); do
  one "$wt" "$base"
  one "$root" "this-tree"
done
