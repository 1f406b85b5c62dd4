//go:build !linux

package http

import "syscall"

// startWatch reports that this platform watches a parked stream's
// connection with a goroutine (park.go).
func startWatch(*parking) bool { return false }

func stopWatch(*parking) {}

// oneWrite is not used where startWatch reports false.
type oneWrite struct{}

func (*oneWrite) write(syscall.RawConn, []byte) (int, error) { return 0, errWouldBlock }
