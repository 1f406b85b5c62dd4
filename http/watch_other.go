//go:build !linux

package http

// startWatch reports that this platform watches a parked stream's
// connection with a goroutine (park.go).
func startWatch(*parking) bool { return false }

func stopWatch(*parking) {}
