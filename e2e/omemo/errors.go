package omemo

import (
	"fmt"
	"strconv"
)

// Kind is what went wrong, in terms a user can act on.
type Kind uint8

// The kinds of Error.
const (
	// NoSession: there is no session with a device and no bundle to start
	// one (the device list or bundle was never fetched, or the bundle
	// cannot be used). Fetch the bundle, or ask the sender to start anew.
	NoSession Kind = iota + 1
	// Untrusted: the device is distrusted, its identity key changed, or
	// (once a device of the account is verified) it is not yet trusted.
	// Decide on its fingerprint with SetTrust.
	Untrusted
	// NotForThisDevice: the message carries no key for this device; the
	// sender did not know it (publish the device list and bundle).
	NotForThisDevice
	// Duplicate: the message was already decrypted (a replay, or a
	// duplicate delivery); its key is gone.
	Duplicate
	// Corrupt: the element or the ciphertext is malformed, or fails
	// authentication.
	Corrupt
)

func (k Kind) String() string {
	switch k {
	case NoSession:
		return "no session"
	case Untrusted:
		return "untrusted device"
	case NotForThisDevice:
		return "not encrypted for this device"
	case Duplicate:
		return "duplicate or replayed message"
	case Corrupt:
		return "corrupt payload"
	}
	return "kind " + strconv.Itoa(int(k))
}

// Error is an OMEMO failure. The package-level Err values name its kinds;
// an *Error matches one under errors.Is when the kinds are equal (and JID
// and Device, where the target sets them), so that
//
//	errors.Is(err, omemo.ErrUntrusted)
//
// holds for every trust failure, whatever its cause.
type Error struct {
	Kind Kind
	// JID and Device name the remote device concerned, when there is one.
	JID    string
	Device uint32
	// Err is the cause, for logs and errors.Is/As.
	Err error
}

// The kinds of Error, as targets for errors.Is.
var (
	ErrNoSession        = &Error{Kind: NoSession}
	ErrUntrusted        = &Error{Kind: Untrusted}
	ErrNotForThisDevice = &Error{Kind: NotForThisDevice}
	ErrDuplicate        = &Error{Kind: Duplicate}
	ErrCorrupt          = &Error{Kind: Corrupt}
)

// Error implements error.
func (e *Error) Error() string {
	s := "omemo: " + e.Kind.String()
	if e.JID != "" || e.Device != 0 {
		s += " (" + e.JID
		if e.Device != 0 {
			s += " device " + strconv.FormatUint(uint64(e.Device), 10)
		}
		s += ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error of the same kind, and of the same
// JID and Device where the target sets them.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil {
		return false
	}
	return (t.Kind == 0 || t.Kind == e.Kind) &&
		(t.JID == "" || t.JID == e.JID) &&
		(t.Device == 0 || t.Device == e.Device)
}

func newError(k Kind, jid string, device uint32, cause error) *Error {
	return &Error{Kind: k, JID: jid, Device: device, Err: cause}
}

func corrupt(format string, args ...any) *Error {
	return &Error{Kind: Corrupt, Err: fmt.Errorf(format, args...)}
}
