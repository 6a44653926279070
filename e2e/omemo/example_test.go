package omemo_test

import (
	"context"
	"fmt"

	"github.com/s2sd/s2sd/e2e/omemo"
)

// Alice writes to Bob. In a program each device has its own durable store
// (omemo.OpenBoltStore), and the device lists and bundles come from the
// accounts' PEP nodes (Config.FetchBundle fetches bundles on demand).
func Example() {
	ctx := context.Background()
	alice, _ := omemo.Open(ctx, omemo.Config{JID: "alice@example.org", Store: &omemo.MemStore{}})
	bob, _ := omemo.Open(ctx, omemo.Config{JID: "bob@example.net", Store: &omemo.MemStore{}})

	// What Alice reads from Bob's PEP nodes.
	bundle, _ := bob.Bundle(ctx)
	alice.SetDeviceList(ctx, bob.JID(), bob.WithSelf(nil))
	alice.AddBundle(ctx, bob.JID(), bob.ID(), bundle)

	e, _ := alice.Encrypt(ctx, []byte("Hello, Bob"), bob.JID())
	raw := e.AppendXML(nil) // the <encrypted/> child of a <message/>

	in, _ := omemo.ParseEncrypted(raw)
	m, err := bob.Decrypt(ctx, alice.JID(), in)
	fmt.Println(string(m.Plaintext), err)
	fmt.Println(m.Fingerprint == alice.Fingerprint(), m.Trust)
	// Output:
	// Hello, Bob <nil>
	// true undecided
}

func ExampleDeviceList_AppendXML() {
	l := &omemo.DeviceList{Devices: []uint32{12345, 4223}}
	fmt.Println(string(l.AppendXML(nil)))
	// Output: <list xmlns='eu.siacs.conversations.axolotl'><device id='12345'/><device id='4223'/></list>
}
