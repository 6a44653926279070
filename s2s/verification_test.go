package s2s

import (
	"testing"
)

// TestVerificationContext: the dialback verifications under way share a
// context that the stream's end cancels; once the last is over the stream
// keeps none, and one that starts after the end is cancelled at once.
func TestVerificationContext(t *testing.T) {
	st := &in{}
	ctx1, done1 := st.verification()
	ctx2, done2 := st.verification()
	if ctx1 != ctx2 || ctx1.Err() != nil {
		t.Fatal("two verifications under way: not one live context")
	}
	done1()
	if ctx2.Err() != nil || st.vctx == nil {
		t.Fatal("the context ended while a verification was still under way")
	}
	done2()
	if ctx2.Err() == nil || st.vctx != nil {
		t.Fatal("the stream keeps the context after its last verification")
	}

	// The stream ends while one is under way.
	ctx3, done3 := st.verification()
	st.endVerifications()
	if ctx3.Err() == nil {
		t.Fatal("the stream's end did not cancel the verification under way")
	}
	done3()
	ctx4, done4 := st.verification()
	defer done4()
	if ctx4.Err() == nil {
		t.Fatal("a verification that starts after the stream's end is not cancelled")
	}
}
