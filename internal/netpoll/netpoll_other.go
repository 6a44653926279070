//go:build !linux

package netpoll

import "syscall"

func add(*Waiter, syscall.RawConn) bool { return false }

func remove(*Waiter, syscall.RawConn) {}

// Armed returns how many Waiters are armed and not yet fired: none here.
func Armed() int { return 0 }
