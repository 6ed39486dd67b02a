package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/distribution/distribution/v3/configuration"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/errdef"
)

// Errors of [Layout.VerifyBlob].
var (
	ErrBlobMissing = errors.New("missing from storage")
	ErrBlobCorrupt = errors.New("the stored blob is corrupt")
)

// layoutV2 is where distribution keeps its data inside the storage.
const layoutV2 = "/docker/registry/v2"

// Layout reads distribution's storage layout (blobs, repository links,
// tags) through its storage driver, filesystem or S3, without the
// registry's caches: what is really stored, for consistency checks.
// It needs no running registry and writes nothing.
type Layout struct {
	drv storagedriver.StorageDriver
}

// OpenLayout opens the storage o configures (o.Storage.S3, else
// o.RootDir/storage, which must exist).
func OpenLayout(ctx context.Context, o HandlerOptions) (*Layout, error) {
	name, params := "filesystem", configuration.Parameters{"rootdirectory": filepath.Join(o.RootDir, "storage")}
	if o.Storage.S3 != nil {
		var err error
		if params, err = o.Storage.S3.parameters(); err != nil {
			return nil, err
		}
		name = "s3"
	} else if o.RootDir == "" {
		return nil, errors.New("registry: RootDir is required")
	}
	drv, err := factory.Create(ctx, name, params)
	if err != nil {
		return nil, fmt.Errorf("registry: opening the %s storage: %w", name, err)
	}
	return &Layout{drv: drv}, nil
}

func pathNotFound(err error) bool {
	var nf storagedriver.PathNotFoundError
	return errors.As(err, &nf)
}

// VerifyBlob reads blob d and checks its content against its digest
// (sha256 only). A blob not stored wraps ErrBlobMissing, one whose
// content does not match wraps ErrBlobCorrupt.
func (l *Layout) VerifyBlob(ctx context.Context, d digest.Digest) error {
	if d.Validate() != nil || d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("registry: %q is not a sha256 digest", d)
	}
	r, err := l.drv.Reader(ctx, path.Join(layoutV2, "blobs", "sha256", d.Encoded()[:2], d.Encoded(), "data"), 0)
	if pathNotFound(err) {
		return ErrBlobMissing
	}
	if err != nil {
		return fmt.Errorf("reading it: %w", err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("reading it: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Encoded() {
		return fmt.Errorf("%w: its content has sha256 %s", ErrBlobCorrupt, got)
	}
	return nil
}

// Linked reports whether repository repo (OWNER/NAME) links blob d, as a
// layer or config or as a manifest revision.
func (l *Layout) Linked(ctx context.Context, repo string, d digest.Digest) (bool, error) {
	dir := path.Join(layoutV2, "repositories", repo)
	for _, p := range []string{
		path.Join(dir, "_layers", "sha256", d.Encoded(), "link"),
		path.Join(dir, "_manifests", "revisions", "sha256", d.Encoded(), "link"),
	} {
		_, err := l.drv.Stat(ctx, p)
		if err == nil {
			return true, nil
		}
		if !pathNotFound(err) {
			return false, fmt.Errorf("registry: reading the links of %s: %w", repo, err)
		}
	}
	return false, nil
}

// Tag returns the digest tag of repository repo points at; a tag that
// does not exist wraps errdef.ErrNotFound.
func (l *Layout) Tag(ctx context.Context, repo, tag string) (string, error) {
	b, err := l.drv.GetContent(ctx, path.Join(layoutV2, "repositories", repo, "_manifests", "tags", tag, "current", "link"))
	if pathNotFound(err) {
		return "", fmt.Errorf("registry: tag %s:%s: %w", repo, tag, errdef.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("registry: reading tag %s:%s: %w", repo, tag, err)
	}
	return strings.TrimSpace(string(b)), nil
}
