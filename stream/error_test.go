package stream_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/s2sd/s2sd/stream"
)

func TestEveryCondition(t *testing.T) {
	if len(stream.Conditions) != 25 {
		t.Fatalf("%d conditions, RFC 6120 §4.9.3 defines 25", len(stream.Conditions))
	}
	for _, c := range stream.Conditions {
		e := stream.New(c, "why")
		b := e.AppendXML(nil)
		// Parse the element as it arrives on a stream (the prefix is bound
		// by the stream header; encoding/xml accepts it unbound).
		got, err := stream.Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if got.Condition != c || got.Text != "why" || !got.Remote {
			t.Errorf("%s: parsed %+v", c, got)
		}
		if !errors.Is(fmt.Errorf("x: %w", e), &stream.Error{Condition: c}) {
			t.Errorf("%s: errors.Is fails", c)
		}
	}
	if !errors.Is(stream.New(stream.PolicyViolation, ""), stream.ErrPolicyViolation) {
		t.Error("sentinel does not match")
	}
	var se *stream.Error
	if !errors.As(fmt.Errorf("wrapped: %w", stream.New(stream.InvalidFrom, "")), &se) || se.Condition != stream.InvalidFrom {
		t.Error("errors.As fails")
	}
}

func ExampleError() {
	fmt.Println(string(stream.New(stream.HostUnknown, "not served here").AppendXML(nil)))
	// Output:
	// <stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>not served here</text></stream:error>
}
