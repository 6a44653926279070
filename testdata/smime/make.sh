#!/bin/sh
# Regenerates the test PKI of this directory with OpenSSL 3. See README.md.
set -eu
cd "$(dirname "$0")"
days=36500
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days \
  -subj "/O=s2sd test/CN=s2sd test e2e CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
for who in juliet@example.com romeo@example.net; do
  name=${who%@*}
  cat >$name.cnf <<CNF
[ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = emailProtection
subjectAltName = URI:im:$who,URI:pres:$who,URI:xmpp:$who,otherName:1.3.6.1.5.5.7.8.5;UTF8:$who
CNF
  openssl req -newkey rsa:2048 -nodes -keyout $name.key -out $name.csr -subj "/CN=$who" 2>/dev/null
  openssl x509 -req -in $name.csr -CA ca.pem -CAkey ca.key -set_serial 0x$(openssl rand -hex 8) \
    -days $days -extfile $name.cnf -extensions ext -out $name.pem 2>/dev/null
  rm $name.csr $name.cnf
done
