// Package stream holds the stream-level errors of RFC 6120 §4.9.
//
// A stream error is unrecoverable: the entity that detects it sends
// <stream:error/>, closes the stream with </stream:stream> and then the TCP
// connection (RFC 6120 §4.9.1.1). The values in this package are typed so that
// callers can test for a condition with errors.Is and extract the details with
// errors.As:
//
//	var se *stream.Error
//	if errors.As(err, &se) && se.Condition == stream.InvalidFrom { ... }
//	if errors.Is(err, stream.ErrPolicyViolation) { ... }
package stream
