package s2s

import "github.com/s2sd/s2sd/internal/xmlstream"

// ReadNext reads the next element the peer sent on c (tests only).
func ReadNext(c *Conn) (*xmlstream.Element, error) { return c.r.Next() }
