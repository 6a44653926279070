// Package stanza holds the stanza-level errors of RFC 6120 §8.3 and the
// helpers that turn a stanza that could not be handled into the error reply
// its sender receives.
package stanza
