package s2s

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// DialbackKey computes a dialback key as XEP-0185 §3 recommends:
//
//	HEX( HMAC-SHA256( SHA256(secret), receiving + ' ' + originating + ' ' + streamID ) )
//
// The key binds the receiving and originating domains and the stream ID the
// receiving server assigned, so a key is never valid on another stream or
// for another pair of domains (XEP-0220 §8).
func DialbackKey(secret []byte, receiving, originating, streamID string) string {
	k := sha256.Sum256(secret)
	m := hmac.New(sha256.New, k[:])
	m.Write([]byte(receiving))
	m.Write([]byte{' '})
	m.Write([]byte(originating))
	m.Write([]byte{' '})
	m.Write([]byte(streamID))
	return hex.EncodeToString(m.Sum(nil))
}

// checkDialbackKey compares a received key with the expected one in
// constant time.
func checkDialbackKey(secret []byte, receiving, originating, streamID, key string) bool {
	want := DialbackKey(secret, receiving, originating, streamID)
	return subtle.ConstantTimeCompare([]byte(want), []byte(key)) == 1
}

// NewSecret returns a random dialback secret.
func NewSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// newStreamID returns a fresh random stream ID (RFC 6120 §4.7.3: unique and
// unpredictable, as it feeds dialback keys).
func newStreamID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
