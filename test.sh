#!/bin/bash
# Runs every test of the project: unit, transcript, interop (Prosody, OpenSSL, GnuPG)
# and a bounded run of each fuzz target.
#
#   ./test.sh            everything
#   FUZZTIME=0 ./test.sh skip the fuzz runs (local iterations only)
#
# Installs the interop peers with apt-get when they are missing and this runs as root;
# otherwise the interop tests fail (CI=true) or skip with a message naming what is missing.
set -euo pipefail
cd "$(dirname "$0")"
export PATH=$PATH:/usr/local/go/bin

need=()
command -v prosody >/dev/null || need+=(prosody)
dpkg -s lua-unbound >/dev/null 2>&1 || need+=(lua-unbound)
command -v openssl >/dev/null || need+=(openssl)
command -v gpg >/dev/null || need+=(gnupg)
command -v python3 >/dev/null || need+=(python3)
command -v ss >/dev/null || need+=(iproute2)
command -v xmllint >/dev/null || need+=(libxml2-utils) # the RFC 3863 schema check of cpim
command -v chromium >/dev/null || need+=(chromium)      # node.TestStatusPageBrowser renders /status
# OMEMO interop peers (e2e/omemo): python-omemo for Debian's own python3.
for p in python3-omemo python3-oldmemo python3-twomemo python3-xmlschema; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${need[*]}"
    made_policy=false
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      # Keep the packaged Prosody service from starting on 5222/5269.
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
      made_policy=true
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
    $made_policy && rm -f /usr/sbin/policy-rc.d
  else
    echo "test.sh: missing ${need[*]}: install them (apt-get install ${need[*]}) or the interop tests fail" >&2
  fi
fi

go build ./...
go test -count=1 -timeout 20m ./...
# The stream parser's portable code, which other architectures run in
# place of its assembly.
go test -count=1 -tags purego ./internal/xmlstream
# e2e/omemo is a module of its own (it links GPL-3.0 libsignal, which the
# rest of the project never imports); its interop test runs /usr/bin/python3.
(cd e2e/omemo && go build ./... && go vet ./... && go test -count=1 -timeout 10m ./...)

# Bounded fuzzing: every Fuzz target for FUZZTIME (default 10s).
fuzztime=${FUZZTIME:-10s}
# One log per run: two runs at once must not write over each other.
fuzzlog=$(mktemp "${TMPDIR:-/tmp}/s2sd-fuzz.XXXXXX")
trap 'rm -f "$fuzzlog"' EXIT
if [ "$fuzztime" != 0 ]; then
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //'); do
      echo "fuzz $pkg $f for $fuzztime"
      corpus="$dir/testdata/fuzz/$f"
      before=$(ls "$corpus" 2>/dev/null || true)
      if ! go test -run='^$' -fuzz="^$f\$" -fuzztime="$fuzztime" "$pkg" >"$fuzzlog" 2>&1; then
        after=$(ls "$corpus" 2>/dev/null || true)
        # Go 1.26's fuzz coordinator can report "context deadline
        # exceeded" when -fuzztime ends while a worker is busy
        # (golang/go#75804): no input failed, none was written. A real
        # failure always writes its input to testdata/fuzz.
        if [ "$before" = "$after" ] && tail -5 "$fuzzlog" | grep -q '^    context deadline exceeded$'; then
          echo "fuzz $f: ended by the fuzz coordinator's deadline race (golang/go#75804), no failing input; not a finding"
          continue
        fi
        cat "$fuzzlog"
        echo "fuzz $f failed"
        exit 1
      fi
    done
  done
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' e2e/omemo/*_test.go | sed 's/func //'); do
    echo "fuzz e2e/omemo $f for $fuzztime"
    if ! (cd e2e/omemo && go test -run='^$' -fuzz="^$f\$" -fuzztime="$fuzztime" .) >"$fuzzlog" 2>&1; then
      if tail -5 "$fuzzlog" | grep -q '^    context deadline exceeded$' && ! git status --porcelain e2e/omemo/testdata/fuzz | grep -q .; then
        echo "fuzz $f: ended by the fuzz coordinator's deadline race (golang/go#75804), no failing input; not a finding"
        continue
      fi
      cat "$fuzzlog"
      echo "fuzz $f failed"
      exit 1
    fi
  done
fi
echo "all tests passed"
