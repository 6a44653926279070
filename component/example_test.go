package component_test

import (
	"context"
	"log"

	"github.com/s2sd/s2sd/component"
	"github.com/s2sd/s2sd/route"
)

// A server that accepts one component and routes what it sends.
func ExampleServer() {
	router := &route.Router{}
	srv := &component.Server{
		Secret: func(domain string) (string, bool) {
			if domain == "gw.example.org" {
				return "s3cret", true
			}
			return "", false
		},
		Handler:      router,
		OnConnect:    func(d string) { log.Print("component up: ", d) },
		OnDisconnect: func(d string) { log.Print("component down: ", d) },
	}
	// Stanzas for gw.example.org go to its stream.
	router.SetComponent("gw.example.org", srv)
	go srv.ListenAndServe("127.0.0.1:5347")
}

// A component that answers every message with an echo, reconnecting when
// the server restarts.
func ExampleComponent() {
	var c *component.Component
	c = &component.Component{
		Addr: "127.0.0.1:5347", Domain: "echo.example.org", Secret: "s3cret",
		Handler: route.HandlerFunc(func(_ context.Context, st *route.Stanza) error {
			if st.Kind != "message" || st.IsError() {
				return nil
			}
			reply := "<message from='" + st.To.String() + "' to='" + st.From.String() + "'>" +
				"<body>echo</body></message>"
			return c.Send([]byte(reply))
		}),
	}
	go c.Run(context.Background())
}
