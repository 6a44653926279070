//go:build !linux

package xmlstream

import "syscall"

const tryWriteSupported = false

func tryWrite(syscall.RawConn, []byte) (int, error) { return 0, nil }

func unread(syscall.RawConn) bool { return true }
