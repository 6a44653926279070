module github.com/s2sd/s2sd/e2e/omemo

go 1.26.0

require (
	github.com/s2sd/s2sd v0.0.0-00010101000000-000000000000
	go.etcd.io/bbolt v1.5.0
	go.mau.fi/libsignal v0.2.1
)

require (
	filippo.io/edwards25519 v1.1.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
	mellium.im/reader v0.1.0 // indirect
	mellium.im/xmlstream v0.15.4 // indirect
	mellium.im/xmpp v0.22.0 // indirect
)

replace github.com/s2sd/s2sd => ../..
