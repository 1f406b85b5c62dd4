//go:build !unix

package sqlite

// Without flock, a temporary database is removed only by its own process.
func lockDir(string) (func(), error) { return func() {}, nil }

func abandoned(string) bool { return false }
