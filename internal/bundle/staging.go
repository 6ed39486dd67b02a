package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// StagingDir returns, creating it, the staging directory for writing the
// archive out: base/<hash of out>, where an empty base means the user cache
// directory's skiff/<kind> (kind is "build" or "pull"). A writer keeps it
// when it fails or is interrupted, so the next run for the same output
// resumes from the blobs already staged, and removes it after a successful
// write.
func StagingDir(base, kind, out string) (string, error) {
	if base == "" {
		c, err := os.UserCacheDir()
		if err != nil {
			c = os.TempDir()
		}
		base = filepath.Join(c, "skiff", kind)
	}
	sum := sha256.Sum256([]byte(out))
	dir := filepath.Join(base, hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the staging directory %s: %w", dir, err)
	}
	return dir, nil
}
