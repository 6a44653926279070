#!/bin/sh
# Regenerates the fixed test keys and vectors of e2e/openpgp with GnuPG 2.2.
# Everything is made with a faked clock (2020-01-01) so that the keys are
# valid whatever the test machine's clock says. Run from this directory.
set -eu
export GNUPGHOME=$(mktemp -d /tmp/s2sd-gpg.XXXXXX)
trap 'gpgconf --kill all; rm -rf "$GNUPGHOME"' EXIT
# Cheap passphrase protection (the least S2K count): tests unlock Bob's key often.
echo 's2k-count 65536' >"$GNUPGHOME/gpg-agent.conf"
g() { gpg --batch --quiet --faked-system-time 20200101T000000 --pinentry-mode loopback "$@"; }
fpr() { gpg --list-keys --with-colons "$1" | awk -F: '/^fpr/{print $10; exit}'; }

g --passphrase '' --quick-gen-key 'Alice <alice@example.com>' ed25519 sign,cert never
g --passphrase '' --quick-add-key "$(fpr alice@example.com)" cv25519 encr never
g --passphrase 'bob passphrase' --quick-gen-key 'Bob <bob@example.net>' rsa3072 sign,cert never
g --passphrase 'bob passphrase' --quick-add-key "$(fpr bob@example.net)" rsa3072 encr never
g --passphrase '' --quick-gen-key 'Legacy <legacy@example.org>' dsa2048 sign,cert never
g --passphrase '' --quick-add-key "$(fpr legacy@example.org)" elg2048 encr never

g --armor --export alice@example.com >alice.pub.asc
g --armor --passphrase '' --export-secret-keys alice@example.com >alice.sec.asc
g --armor --export bob@example.net >bob.pub.asc
g --armor --passphrase 'bob passphrase' --s2k-count 65536 --export-secret-keys bob@example.net >bob.sec.asc
g --armor --export legacy@example.org >legacy.pub.asc
g --armor --passphrase '' --export-secret-keys legacy@example.org >legacy.sec.asc

printf 'Online' >online.txt
printf 'Meet me at the orchard.' >body.txt
# SHA-1 text-mode signature (RSA; DSA-2048 needs a 224-bit or longer hash).
g --passphrase 'bob passphrase' --armor --textmode --digest-algo SHA1 -u bob@example.net \
  --detach-sign -o bob-sha1.sig.asc online.txt
# DSA text-mode signature.
g --armor --textmode --digest-algo SHA256 -u legacy@example.org --detach-sign -o legacy-dsa.sig.asc online.txt
# ElGamal, no MDC (symmetrically encrypted data packet, tag 9), as in XEP-0027's example.
g --armor --rfc2440 --trust-model always -r legacy@example.org --encrypt -o legacy-nomdc.msg.asc body.txt
rm -f online.txt body.txt
