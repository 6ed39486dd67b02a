package hub

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Defaults of the hub's housekeeping.
const (
	// DefaultUploadPurgeAge is how old an unfinished blob upload gets
	// before it is purged.
	DefaultUploadPurgeAge = 24 * time.Hour
	// staleTempAge is how old a file under ROOT/tmp (a review's rebuilt
	// archive) gets before it is removed: no review takes that long.
	staleTempAge = 6 * time.Hour
	// maintainEvery is how often a serving hub does its housekeeping.
	maintainEvery = time.Hour
)

// MaintenanceResult reports one round of [Hub.Maintain].
type MaintenanceResult struct {
	// TempRemoved counts the stale entries removed from ROOT/tmp.
	TempRemoved int
	// UploadsPurged counts the unfinished uploads deleted.
	UploadsPurged int
}

// Maintain does the hub's housekeeping: it removes review archives left
// in ROOT/tmp (by a killed hub) older than a few hours, and purges blob
// uploads unfinished for Options.UploadPurgeAge (partial blobs, such as
// those a full disk left). A serving hub runs it every hour; New cleans
// ROOT/tmp at start.
func (h *Hub) Maintain(ctx context.Context) (*MaintenanceResult, error) {
	r := &MaintenanceResult{}
	n, terr := h.cleanTemp(h.o.Now().Add(-staleTempAge), "")
	r.TempRemoved = n
	n, perr := h.registry.PurgeUploads(ctx, h.o.Now().Add(-h.o.UploadPurgeAge))
	r.UploadsPurged = n
	if perr != nil {
		perr = fmt.Errorf("purging unfinished uploads: %w", perr)
	}
	return r, errors.Join(terr, perr)
}

// cleanTemp removes the entries of ROOT/tmp last modified before
// cutoff, and those whose name matches the pattern any (when not ""),
// and returns how many.
func (h *Hub) cleanTemp(cutoff time.Time, any string) (int, error) {
	dir := filepath.Join(h.o.Root, "tmp")
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cleaning %s: %w", dir, err)
	}
	n := 0
	var errs []error
	for _, e := range es {
		info, err := e.Info()
		if err != nil {
			continue
		}
		if ok, _ := filepath.Match(any, e.Name()); !ok && !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// maintainLoop runs Maintain every maintainEvery until ctx is done,
// logging what it did.
func (h *Hub) maintainLoop(ctx context.Context) {
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r, err := h.Maintain(ctx)
		if err != nil {
			h.logger.Error("hub: housekeeping", "err", err)
		}
		if r.TempRemoved+r.UploadsPurged > 0 {
			h.logger.Info("hub: housekeeping", "tempRemoved", r.TempRemoved, "uploadsPurged", r.UploadsPurged)
		}
	}
}

// DefaultMaxUnreferenced is the default of Options.MaxUnreferenced.
const DefaultMaxUnreferenced = 32 << 30

// recordUpload notes that a blob of size bytes was uploaded into repo
// of owner; until a manifest pushed there references it, it counts
// against the owner's bound on unreferenced uploads.
func (s *Store) recordUpload(ctx context.Context, owner, repo, d string, size int64) error {
	return s.exec(ctx, s.db, `INSERT INTO uploads (owner, repo, digest, size, time) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (repo, digest) DO UPDATE SET size = excluded.size, time = excluded.time`, owner, repo, d, size, s.now().Unix())
}

// referenceUploads notes that a manifest pushed into repo references
// the blobs ds.
func (s *Store) referenceUploads(ctx context.Context, repo string, ds []string) error {
	for _, d := range ds {
		if err := s.exec(ctx, s.db, `DELETE FROM uploads WHERE repo = ? AND digest = ?`, repo, d); err != nil {
			return err
		}
	}
	return nil
}

// unreferencedBytes sums the blobs uploaded into owner's repositories
// since since that no pushed manifest references.
func (s *Store) unreferencedBytes(ctx context.Context, owner string, since time.Time) (int64, error) {
	var n sql.NullInt64
	err := s.row(ctx, s.db, `SELECT SUM(size) FROM uploads WHERE owner = ? AND time >= ?`, owner, since.Unix()).Scan(&n)
	return n.Int64, err
}
