// Package interop runs reference XMPP peers (Prosody today; openssl and gpg
// drivers beside it) for tests, through the scripts in peers/ (see
// peers/README.md in the shared tree). Everything listens on loopback.
//
// A missing peer binary skips the test, except with CI=true where it fails
// it: see Require.
package interop
