package openpgp_test

import (
	"fmt"
	"log"
	"os"
	"regexp"

	"github.com/s2sd/s2sd/e2e/openpgp"
)

// readKeys reads an armored key file of the package's test data.
func readKeys(name string, passphrase []byte) *openpgp.KeyRing {
	f, err := os.Open("../../testdata/openpgp/" + name)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	kr, err := openpgp.ReadKeyRing(f, passphrase)
	if err != nil {
		log.Fatal(err)
	}
	return kr
}

// elide replaces the armored data, which changes with every signature, so
// that the shape of the stanza shows.
var elide = regexp.MustCompile(`(?s)(<x xmlns='jabber:x:(?:signed|encrypted)'>).*?(</x>)`)

func Example_signedPresence() {
	// Juliet signs her presence with her secret key...
	juliet := &openpgp.Config{Keys: readKeys("alice.sec.asc", nil)}
	signed, err := juliet.SignPresence([]byte(`<presence xmlns='jabber:client' to='romeo@example.net'><status>Online</status></presence>`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(elide.ReplaceAllString(string(signed), "$1...$2"))

	// ... and Romeo, who has her public key, verifies it.
	romeo := &openpgp.Config{Keys: readKeys("alice.pub.asc", nil)}
	sig, err := romeo.VerifyPresence(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed by", sig.Signer.UserIDs[0])
	fmt.Println("key", sig.Signer.Fingerprint)
	fmt.Println("text signature:", sig.Text)
	// Output:
	// <presence xmlns='jabber:client' to='romeo@example.net'><status>Online</status><x xmlns='jabber:x:signed'>...</x></presence>
	// signed by Alice <alice@example.com>
	// key EF631AEBE700496169DFBDA1521B5124086780CA
	// text signature: true
}

func Example_encryptedMessage() {
	// Romeo encrypts to the key that signed Juliet's presence.
	romeo := &openpgp.Config{Keys: readKeys("alice.pub.asc", nil)}
	julietKey, err := romeo.Keys.Lookup("alice@example.com")
	if err != nil {
		log.Fatal(err)
	}
	msg, err := romeo.EncryptMessage([]byte(`<message xmlns='jabber:client' to='juliet@example.com' type='chat'><body>Wherefore art thou?</body></message>`), julietKey)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(elide.ReplaceAllString(string(msg), "$1...$2"))

	// Juliet decrypts with her secret key.
	juliet := &openpgp.Config{Keys: readKeys("alice.sec.asc", nil)}
	plain, m, err := juliet.DecryptMessage(msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(plain))
	fmt.Println("decrypted with", m.Recipient.UserIDs[0])
	// Output:
	// <message xmlns='jabber:client' to='juliet@example.com' type='chat'><body>This message is encrypted.</body><x xmlns='jabber:x:encrypted'>...</x></message>
	// <message xmlns='jabber:client' to='juliet@example.com' type='chat'><body>Wherefore art thou?</body></message>
	// decrypted with Alice <alice@example.com>
}

func ExampleArmor() {
	// The content of XEP-0027's <x xmlns='jabber:x:signed'/> example.
	wire := `
    iQA/AwUBOjU5dnol3d88qZ77EQI2JACfRngLJ045brNnaCX78ykKNUZaTIoAoPHI
    2uJxPMGR73EBIvEpcv0LRSy+
    =45f8
  `
	armored, err := openpgp.Armor(wire, openpgp.SignatureBlock)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(armored)
	// Output:
	// -----BEGIN PGP SIGNATURE-----
	//
	// iQA/AwUBOjU5dnol3d88qZ77EQI2JACfRngLJ045brNnaCX78ykKNUZaTIoAoPHI
	// 2uJxPMGR73EBIvEpcv0LRSy+
	// =45f8
	// -----END PGP SIGNATURE-----
}

func ExampleStripArmor() {
	wire, blockType, err := openpgp.StripArmor(`-----BEGIN PGP MESSAGE-----
Version: GnuPG v1.4.11 (GNU/Linux)

hF4DL8elRcjPrFgSAQdA
=AAAA
-----END PGP MESSAGE-----
`)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(blockType)
	fmt.Println(wire)
	// Output:
	// PGP MESSAGE
	// hF4DL8elRcjPrFgSAQdA
	// =AAAA
}
