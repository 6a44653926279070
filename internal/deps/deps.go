package deps

import (
	_ "github.com/BurntSushi/toml"
	_ "github.com/ProtonMail/go-crypto/openpgp/v2"
	_ "github.com/miekg/dns"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/smallstep/pkcs7"
	_ "golang.org/x/net/idna"
	_ "golang.org/x/text/secure/precis"
	_ "mellium.im/xmpp/jid"
)
