package node

import "github.com/s2sd/s2sd/internal/xmlstream"

// Stanzas kept past Deliver without Own read as '#' at once in these
// tests (xmlstream.PoisonBorrowed).
func init() { xmlstream.PoisonBorrowed(true) }
