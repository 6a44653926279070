package cpim_test

import (
	"fmt"
	"strings"

	"github.com/s2sd/s2sd/cpim"
)

// An XMPP message becomes a Message/CPIM object (RFC 3922 §4.1); the
// resource and type are kept in XMPP.* extension headers.
func ExampleFromStanza() {
	m, err := cpim.FromStanza([]byte(`<message xmlns='jabber:client' from='juliet@example.com/balcony' to='romeo@example.net' id='123456789@example.net' type='chat'>` +
		`<subject>Hi!</subject><subject xml:lang='cz'>Ahoj!</subject><body>Wherefore art thou, Romeo?</body></message>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := m.Marshal()
	fmt.Print(strings.ReplaceAll(string(b), "\r\n", "\n"))
	// Output:
	// From: <im:juliet@example.com>
	// To: <im:romeo@example.net>
	// Subject: Hi!
	// Subject:;lang=cz Ahoj!
	// NS: XMPP <https://github.com/s2sd/s2sd/cpim/xmpp>
	// XMPP.Type: chat
	// XMPP.FromResource: balcony
	//
	// Content-type: text/plain; charset=utf-8
	// Content-ID: <123456789@example.net>
	//
	// Wherefore art thou, Romeo?
}

// A Message/CPIM object becomes an XMPP message (RFC 3922 §4.2); what has
// no XMPP counterpart is reported.
func ExampleMessage_Stanza() {
	m, err := cpim.Parse([]byte("From: Romeo Montague <im:romeo@example.net>\r\n" +
		"To: Juliet Capulet <im:juliet@example.com>\r\n" +
		"DateTime: 2003-12-09T23:45:36.66Z\r\n" +
		"\r\n" +
		"Content-type: text/plain; charset=utf-8\r\n" +
		"Content-ID: <123456789@example.net>\r\n" +
		"\r\n" +
		"Wherefore art thou?"))
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := m.Stanza(cpim.NSServer)
	fmt.Println(string(s))
	fmt.Println(err)
	// Output:
	// <message xmlns='jabber:server' from='romeo@example.net' to='juliet@example.com' id='123456789@example.net'><body>Wherefore art thou?</body></message>
	// cpim: not mapped: DateTime
}

// Presence becomes PIDF (RFC 3922 §5.1).
func ExamplePresenceToPIDF() {
	pidf, err := cpim.PresenceToPIDF([]byte(`<presence xmlns='jabber:client' from='juliet@example.com/balcony'>` +
		`<show>away</show><status>retired to the chamber</status><priority>13</priority></presence>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(pidf))
	// Output:
	// <?xml version='1.0' encoding='UTF-8'?>
	// <presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:im='urn:ietf:params:xml:ns:pidf:im' entity='pres:juliet@example.com'>
	//   <tuple id='balcony'>
	//     <status>
	//       <basic>open</basic>
	//       <im:im>away</im:im>
	//     </status>
	//     <contact priority='0.102'>im:juliet@example.com</contact>
	//     <note>retired to the chamber</note>
	//   </tuple>
	// </presence>
}

// PIDF becomes presence (RFC 3922 §5.2).
func ExamplePIDFToPresence() {
	s, err := cpim.PIDFToPresence([]byte(`<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:im='urn:ietf:params:xml:ns:pidf:im' entity='pres:romeo@example.net'>
  <tuple id='orchard'><status><basic>open</basic><im:im>busy</im:im></status><note>Wooing Juliet</note></tuple>
</presence>`), cpim.NSClient)
	fmt.Println(string(s), err)
	// Output:
	// <presence xmlns='jabber:client' from='romeo@example.net/orchard'><show>dnd</show><status>Wooing Juliet</status></presence> <nil>
}

// Addresses map with RFC 3922 §3's own escaping.
func ExampleXMPPToIM() {
	im, _ := cpim.XMPPToIM("o#27;malley@example.com/pda")
	back, _ := cpim.IMToXMPP(im)
	fmt.Println(im, back)
	// Output:
	// im:o%27malley@example.com o#27;malley@example.com
}
