package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/distribution/distribution/v3/registry/storage"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// GCOptions configure [GC].
type GCOptions struct {
	// DryRun computes what would be freed without deleting anything.
	DryRun bool
	// AllowHubRoot sweeps a Skiff hub's root (one holding [HubMarkers])
	// too; without it GC refuses such a root ([ErrHubRoot]).
	AllowHubRoot bool
}

// GCResult reports a blob garbage collection.
type GCResult struct {
	// BlobsBefore and BlobsAfter count the stored blobs (layers, configs
	// and manifests); BytesBefore and BytesAfter are their total size.
	BlobsBefore, BlobsAfter int
	BytesBefore, BytesAfter int64
}

// GC runs distribution's mark-and-sweep over the storage of an embedded
// registry rooted at rootDir (the RootDir given to [New]): every blob no
// remaining manifest refers to is deleted. A registry serving rootDir
// holds its lock file ([LockFile]); GC then refuses (ErrServing) rather
// than sweep blobs the running registry's cache still claims, and a
// registry cannot start while GC runs. A hub serving rootDir holds the
// lock too (shared among its replicas), and a stopped hub's root is
// refused ([ErrHubRoot]) unless o.AllowHubRoot: its database records
// content the sweep does not read. Manifests deleted through the API
// are no longer referenced, so their blobs go.
func GC(ctx context.Context, rootDir string, o GCOptions) (*GCResult, error) {
	dir := filepath.Join(rootDir, "storage")
	if _, err := os.Stat(filepath.Join(dir, "docker", "registry", "v2")); err != nil {
		return nil, fmt.Errorf("registry storage %s: %w: pass the --root the registry was started with", dir, err)
	}
	lock, err := lockRoot(rootDir, "gc", false)
	if err != nil {
		return nil, fmt.Errorf("garbage collection of %s: %w", rootDir, err)
	}
	defer lock.Release()
	if !o.AllowHubRoot {
		if err := CheckNotHub(rootDir); err != nil {
			return nil, err
		}
	}
	res := &GCResult{}
	if res.BlobsBefore, res.BytesBefore, err = blobUsage(dir); err != nil {
		return nil, err
	}
	drv := filesystem.New(filesystem.DriverParameters{RootDirectory: dir, MaxThreads: 16})
	ns, err := storage.NewRegistry(ctx, drv, storage.EnableDelete)
	if err != nil {
		return nil, fmt.Errorf("registry: opening storage %s: %w", dir, err)
	}
	// Quiet: MarkAndSweep otherwise prints to stdout; libraries are silent.
	if err := storage.MarkAndSweep(ctx, drv, ns, storage.GCOpts{DryRun: o.DryRun, Quiet: true}); err != nil {
		return nil, fmt.Errorf("registry: garbage collection of %s: %w", dir, err)
	}
	if res.BlobsAfter, res.BytesAfter, err = blobUsage(dir); err != nil {
		return nil, err
	}
	return res, nil
}

// blobUsage counts the blob data files under dir and their size.
func blobUsage(dir string) (n int, size int64, err error) {
	blobs := filepath.Join(dir, "docker", "registry", "v2", "blobs")
	err = filepath.WalkDir(blobs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() && d.Name() == "data" {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n++
			size += info.Size()
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("registry: measuring %s: %w", blobs, err)
	}
	return n, size, nil
}
