package omemo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// net is a toy PEP service: the bundles of every device, by JID and id.
type net map[string]map[uint32]*Bundle

func (n net) fetch(_ context.Context, jid string, id uint32) (*Bundle, error) {
	b := n[jid][id]
	if b == nil {
		return nil, errors.New("item-not-found")
	}
	// What travels is XML.
	return ParseBundle(b.AppendXML(nil))
}

func (n net) publish(t *testing.T, d *Device) {
	t.Helper()
	b, err := d.Bundle(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n[d.JID()] == nil {
		n[d.JID()] = map[uint32]*Bundle{}
	}
	n[d.JID()][d.ID()] = b
}

func openDevice(t *testing.T, n net, jid string, st Store) *Device {
	t.Helper()
	d, err := Open(context.Background(), Config{JID: jid, Store: st, FetchBundle: n.fetch, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	n.publish(t, d)
	return d
}

// roundTrip sends e over the wire (XML) and back.
func roundTrip(t *testing.T, e *Encrypted) *Encrypted {
	t.Helper()
	got, err := ParseEncrypted(e.AppendXML(nil))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func setLists(t *testing.T, ds ...*Device) {
	t.Helper()
	lists := map[string]*DeviceList{}
	for _, d := range ds {
		lists[d.JID()] = d.WithSelf(lists[d.JID()])
	}
	for _, d := range ds {
		for jid, l := range lists {
			if err := d.SetDeviceList(context.Background(), jid, l); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestConversation(t *testing.T) {
	ctx := context.Background()
	n := net{}
	dir := t.TempDir()
	open := func(name, jid string) (*Device, *BoltStore) {
		st, err := OpenBoltStore(filepath.Join(dir, name), BoltOptions{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		return openDevice(t, n, jid, st), st
	}
	alice, ast := open("alice", "alice@example.org")
	alice2 := openDevice(t, n, "alice@example.org", &MemStore{})
	bob, bst := open("bob", "bob@example.net")
	setLists(t, alice, alice2, bob)

	e, err := alice.Encrypt(ctx, []byte("hello bob"), bob.JID())
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Keys) != 2 || !e.Keys[0].PreKey {
		t.Fatalf("keys %+v: want a pre-key message to bob and alice's other device", e.Keys)
	}
	for _, d := range []*Device{bob, alice2} {
		m, err := d.Decrypt(ctx, alice.JID(), roundTrip(t, e))
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Plaintext) != "hello bob" || !m.PreKey || !m.BundleChanged || m.Fingerprint != alice.Fingerprint() {
			t.Fatalf("%s got %+v", d.JID(), m)
		}
	}
	// A replay is refused and changes nothing.
	if _, err := bob.Decrypt(ctx, alice.JID(), roundTrip(t, e)); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replay: %v, want ErrDuplicate", err)
	}
	// Bob answers; then both restart from their stores.
	r, err := bob.Encrypt(ctx, []byte("hi alice"), alice.JID())
	if err != nil {
		t.Fatal(err)
	}
	if r.Keys[0].PreKey {
		t.Fatal("bob's answer is a pre-key message")
	}
	// The responder's first message says its previous chain was empty (0),
	// as libsignal-protocol-java does, not 2^32-1.
	if st, err := serializer.SignalMessage.Deserialize(r.Keys[0].Data); err != nil {
		t.Fatal(err)
	} else if st.PreviousCounter != 0 {
		t.Fatalf("bob's first message: previous counter %d", st.PreviousCounter)
	}
	ast.Close()
	bst.Close()
	alice, ast = open("alice", "alice@example.org")
	bob, bst = open("bob", "bob@example.net")
	defer ast.Close()
	defer bst.Close()
	m, err := alice.Decrypt(ctx, bob.JID(), roundTrip(t, r))
	if err != nil || string(m.Plaintext) != "hi alice" || m.PreKey {
		t.Fatalf("alice: %+v, %v", m, err)
	}

	// Many messages both ways, delivered out of order.
	for round := range 5 {
		for _, pair := range [][2]*Device{{alice, bob}, {bob, alice}} {
			from, to := pair[0], pair[1]
			var batch []*Encrypted
			for i := range 20 {
				e, err := from.Encrypt(ctx, fmt.Appendf(nil, "%d/%d", round, i), to.JID())
				if err != nil {
					t.Fatal(err)
				}
				batch = append(batch, roundTrip(t, e))
			}
			perm := rand.Perm(len(batch))
			for _, i := range perm {
				m, err := to.Decrypt(ctx, from.JID(), batch[i])
				if err != nil {
					t.Fatalf("round %d message %d: %v", round, i, err)
				}
				if want := fmt.Sprintf("%d/%d", round, i); string(m.Plaintext) != want {
					t.Fatalf("got %q, want %q", m.Plaintext, want)
				}
			}
		}
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	n := net{}
	alice := openDevice(t, n, "alice@example.org", &MemStore{})
	bob := openDevice(t, n, "bob@example.net", &MemStore{})
	carol := openDevice(t, n, "carol@example.com", &MemStore{})

	// No device list for bob yet.
	if _, err := alice.Encrypt(ctx, []byte("x"), bob.JID()); !errors.Is(err, ErrNoSession) {
		t.Fatalf("no device list: %v", err)
	}
	setLists(t, alice, bob, carol)
	// A device without a bundle.
	if err := alice.SetDeviceList(ctx, "dave@example.com", &DeviceList{Devices: []uint32{7}}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Encrypt(ctx, []byte("x"), "dave@example.com"); !errors.Is(err, &Error{Kind: NoSession, JID: "dave@example.com", Device: 7}) {
		t.Fatalf("no bundle: %v", err)
	}

	e, err := alice.Encrypt(ctx, []byte("for bob"), bob.JID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Decrypt(ctx, alice.JID(), e); !errors.Is(err, ErrNotForThisDevice) {
		t.Fatalf("carol: %v", err)
	}
	// A corrupt payload changes nothing: the intact message still opens.
	bad := *e
	bad.Payload = append([]byte{}, e.Payload...)
	bad.Payload[0] ^= 1
	if _, err := bob.Decrypt(ctx, alice.JID(), &bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt payload: %v", err)
	}
	bad = *e
	bad.Keys = []Key{{RID: bob.ID(), PreKey: true, Data: []byte{0x33}}}
	if _, err := bob.Decrypt(ctx, alice.JID(), &bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt key: %v", err)
	}
	if m, err := bob.Decrypt(ctx, alice.JID(), e); err != nil || string(m.Plaintext) != "for bob" {
		t.Fatalf("after the corrupt ones: %v", err)
	}
	// A message of a session bob does not have.
	e2, err := carol.Encrypt(ctx, []byte("x"), bob.JID())
	if err != nil {
		t.Fatal(err)
	}
	e3, err := carol.Encrypt(ctx, []byte("y"), bob.JID())
	if err != nil {
		t.Fatal(err)
	}
	_ = e2
	e3.Keys[0].PreKey = false
	e3.Keys[0].Data = e3.Keys[0].Data[1:] // not a valid message any more
	if _, err := bob.Decrypt(ctx, carol.JID(), e3); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNoSession) {
		t.Fatalf("unknown session: %v", err)
	}

	// Trust: distrust alice's device, then bob neither reads nor writes to it.
	devs, err := bob.Devices(ctx, alice.JID())
	if err != nil || len(devs) != 1 || devs[0].Fingerprint != alice.Fingerprint() || !devs[0].Session {
		t.Fatalf("devices %+v, %v", devs, err)
	}
	if err := bob.SetTrust(ctx, alice.JID(), alice.ID(), "00", Verified); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("wrong fingerprint: %v", err)
	}
	if err := bob.SetTrust(ctx, alice.JID(), alice.ID(), alice.Fingerprint(), Distrusted); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Encrypt(ctx, []byte("x"), alice.JID()); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("encrypt to distrusted: %v", err)
	}
	e4, err := alice.Encrypt(ctx, []byte("z"), bob.JID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(ctx, alice.JID(), e4); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("decrypt from distrusted: %v", err)
	}
	// BTBV: once one device of alice is verified, a new one is not used.
	if err := bob.SetTrust(ctx, alice.JID(), alice.ID(), alice.Fingerprint(), Verified); err != nil {
		t.Fatal(err)
	}
	alice2 := openDevice(t, n, alice.JID(), &MemStore{})
	if err := bob.SetDeviceList(ctx, alice.JID(), &DeviceList{Devices: []uint32{alice.ID(), alice2.ID()}}); err != nil {
		t.Fatal(err)
	}
	e5, err := bob.Encrypt(ctx, []byte("x"), alice.JID())
	if err != nil {
		t.Fatal(err)
	}
	if len(e5.Keys) != 1 || e5.Keys[0].RID != alice.ID() {
		t.Fatalf("BTBV: keys for %+v", e5.Keys)
	}
}

func TestMaintain(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	st := &MemStore{}
	d, err := Open(ctx, Config{JID: "a@example.org", Store: st, Now: func() time.Time { return now }, PreKeys: 10})
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := d.Bundle(ctx)
	if len(b1.PreKeys) != 10 {
		t.Fatalf("%d pre-keys", len(b1.PreKeys))
	}
	if changed, err := d.Maintain(ctx); err != nil || changed {
		t.Fatalf("fresh device: changed %v, %v", changed, err)
	}
	now = now.Add(8 * 24 * time.Hour)
	if changed, err := d.Maintain(ctx); err != nil || !changed {
		t.Fatalf("a week later: changed %v, %v", changed, err)
	}
	b2, _ := d.Bundle(ctx)
	if b2.SignedPreKeyID == b1.SignedPreKeyID {
		t.Fatal("signed pre-key not rotated")
	}
	now = now.Add(30 * 24 * time.Hour)
	d.Maintain(ctx)
	keys, _ := st.Keys(ctx, bucketSignedPreKey, "")
	if len(keys) != 2 {
		t.Fatalf("signed pre-keys kept: %v", keys)
	}
	// The device reopens with the same identity.
	d2, err := Open(ctx, Config{JID: "a@example.org", Store: st})
	if err != nil || d2.ID() != d.ID() || d2.Fingerprint() != d.Fingerprint() {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := Open(ctx, Config{JID: "b@example.org", Store: st}); err == nil {
		t.Fatal("opened another account's store")
	}
}
