// Package s2sdtest runs the s2sd binary for tests: it builds cmd/s2sd once,
// starts it on a generated configuration, and reads the listener addresses
// from its first log line.
package s2sdtest
