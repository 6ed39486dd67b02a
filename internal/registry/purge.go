package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
)

// PurgeUploads deletes the blob uploads (partial blobs of pushes never
// finished, such as those a full disk interrupted) started before
// olderThan, and returns how many it deleted.
func (h *Handler) PurgeUploads(ctx context.Context, olderThan time.Time) (int, error) {
	drv, err := factory.Create(ctx, h.driver, h.params)
	if err != nil {
		return 0, fmt.Errorf("registry: opening the storage to purge uploads: %w", err)
	}
	if _, err := drv.Stat(ctx, "/docker/registry/v2/repositories"); err != nil {
		var nf storagedriver.PathNotFoundError
		if errors.As(err, &nf) {
			return 0, nil // nothing stored yet
		}
		return 0, fmt.Errorf("registry: purging uploads: %w", err)
	}
	deleted, errs := storage.PurgeUploads(ctx, drv, olderThan, true)
	return len(deleted), errors.Join(errs...)
}
