package deps
import (
	_ "github.com/miekg/dns"
	_ "mellium.im/xmpp/jid"
	_ "github.com/smallstep/pkcs7"
	_ "github.com/ProtonMail/go-crypto/openpgp/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/BurntSushi/toml"
	_ "golang.org/x/text/secure/precis"
	_ "golang.org/x/net/idna"
)
