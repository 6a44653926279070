package route_test

import (
	"strings"
	"testing"

	"github.com/s2sd/s2sd/internal/xmlstream"
	"github.com/s2sd/s2sd/route"
)

// TestKeepBytes: the bytes KeepBytes gives for a lent stanza stay intact
// once its stream reads on; a stanza that is not lent gives its own bytes,
// without a copy; a stanza that must change for the destination's stream
// is rebuilt for it.
func TestKeepBytes(t *testing.T) {
	xmlstream.PoisonBorrowed(true)
	defer xmlstream.PoisonBorrowed(false)
	const (
		plain    = "<message from='a@gw.example' to='b@remote.example' id='k1'><body>kept</body></message>"
		explicit = "<message xmlns='jabber:component:accept' from='a@gw.example' to='b@remote.example' id='k2'/>"
	)
	in := "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>" + plain + explicit + "<message from='a@gw.example' to='b@remote.example' id='k3'/>"
	server := xmlstream.StreamContext{NS: xmlstream.NSServer}
	for _, lent := range []bool{true, false} {
		r := xmlstream.NewReader(strings.NewReader(in), xmlstream.Limits{})
		r.SetBorrow(lent)
		h, err := r.ReadHeader()
		if err != nil {
			t.Fatal(err)
		}
		var kept [][]byte
		for range 2 {
			el, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			s, err := route.NewStanza(el, h.Context(), route.FromComponent)
			if err != nil {
				t.Fatal(err)
			}
			b := s.KeepBytes(server)
			if !lent && len(kept) == 0 && &b[0] != &el.Raw[0] {
				t.Error("a stanza that is not lent was copied")
			}
			kept = append(kept, b)
		}
		if _, err := r.Next(); err != nil { // the stream reads on
			t.Fatal(err)
		}
		want := []string{plain, "<message xmlns='jabber:server' from='a@gw.example' to='b@remote.example' id='k2'/>"}
		for i, b := range kept {
			if string(b) != want[i] {
				t.Errorf("lent %v: kept %s, want %s", lent, b, want[i])
			}
		}
	}
}
