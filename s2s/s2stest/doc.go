// Package s2stest provides utilities for testing servers and clients of
// package s2s, as net/http/httptest does for net/http: servers on
// 127.0.0.1:0 and a loopback DNS zone.
package s2stest
