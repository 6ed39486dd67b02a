//go:build !unix

package registry

import "os"

// flock is a no-op where flock(2) does not exist: GC then relies on the
// documented rule (stop the registry first).
func flock(*os.File, bool) error { return nil }
