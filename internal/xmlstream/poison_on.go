//go:build s2sdpoison

package xmlstream

// Built with -tags s2sdpoison (the s2sd that tests run), every Reader
// poisons what it lent: see PoisonBorrowed.
func init() { poison.Store(true) }
