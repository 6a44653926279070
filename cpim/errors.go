package cpim

import (
	"errors"
	"strings"
)

// Errors returned by the parsers and converters. Other errors start with
// "cpim: " and wrap these with %w where one applies.
var (
	// ErrTooLarge is returned when an input exceeds a size, line, header
	// count, depth or token limit.
	ErrTooLarge = errors.New("cpim: input exceeds limit")

	// ErrSyntax is wrapped by every error about malformed input or about a
	// value that cannot be written in the strict output form.
	ErrSyntax = errors.New("cpim: syntax error")

	// ErrAddress is wrapped by every address mapping error (RFC 3922 §3).
	ErrAddress = errors.New("cpim: address cannot be mapped")

	// ErrSecured is returned when a stanza carries an RFC 3923 <e2e/> object.
	// RFC 3922 §4.1 and §5.1: a gateway passes secured content through
	// unchanged; it does not map it.
	ErrSecured = errors.New("cpim: stanza carries an RFC 3923 <e2e/> object")

	// ErrNotMappable is returned when an object as a whole has no mapping,
	// for example a presence subscription stanza given to PresenceToPIDF or
	// a PIDF document whose only children are notes (RFC 3922 §6.3.2).
	ErrNotMappable = errors.New("cpim: object cannot be mapped")
)

// UnmappedError lists the parts of an object that a conversion could not
// carry over. Conversions that return an *UnmappedError also return their
// result, built from everything that could be mapped: a caller that accepts
// the loss checks errors.As and goes on; one that does not, stops.
// Nothing is dropped without being named here.
type UnmappedError struct {
	// Items names each dropped part, e.g. "cc", "DateTime",
	// "extension {urn:xmpp:receipts}request" or "Require: Locale.MustRenderKanji".
	Items []string
}

func (e *UnmappedError) Error() string {
	return "cpim: not mapped: " + strings.Join(e.Items, "; ")
}

// unmapped collects unmapped items; err returns nil when there are none.
type unmapped []string

func (u *unmapped) add(item string) { *u = append(*u, item) }

func (u unmapped) err() error {
	if len(u) == 0 {
		return nil
	}
	return &UnmappedError{Items: []string(u)}
}
