package hub

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/errdef"

	skregistry "github.com/skiffhq/skiff/internal/registry"
)

// ErrInconsistent reports a hub whose metadata, storage or audit log do
// not agree (see [Check]).
var ErrInconsistent = errors.New("the hub is inconsistent")

// CheckOptions configures [Check].
type CheckOptions struct {
	// Root is the hub directory; DatabaseURL its PostgreSQL database,
	// if it uses one.
	Root, DatabaseURL string
	// Storage is where the hub stores its content, as it is served
	// ([Options.Storage]): Root/storage unless S3 is set.
	Storage skregistry.Storage
}

// CheckReport is the result of [Check].
type CheckReport struct {
	// Packages is the number of published packages checked; Blobs the
	// number of distinct blobs hashed.
	Packages int          `json:"packages"`
	Blobs    int          `json:"blobs"`
	Audit    *AuditReport `json:"audit,omitempty"`
	OK       bool         `json:"ok"`
	Problems []string     `json:"problems,omitempty"`
}

// Check checks a hub: every digest recorded for a pending,
// approved or blocked package (its root and everything reachable, and
// its signatures) is in blob storage with the right sha256 and linked
// into the package's repository; an approved version's tag points at its
// root; no approval or digest row belongs to a package that does not
// exist; and the audit chain verifies. Content is read through the
// storage driver (filesystem or S3), past the registry's caches. The error wraps ErrInconsistent
// when a problem was found; the report lists them all.
func Check(ctx context.Context, o CheckOptions) (*CheckReport, error) {
	if _, err := os.Stat(filepath.Join(o.Root, "storage")); err != nil && o.DatabaseURL == "" {
		if _, err2 := os.Stat(filepath.Join(o.Root, DatabaseFile)); err2 != nil {
			return nil, fmt.Errorf("checking %s: it is not a hub directory (no %s): pass the hub's --root", o.Root, DatabaseFile)
		}
	}
	st, err := OpenStore(ctx, StoreOptions{Root: o.Root, DatabaseURL: o.DatabaseURL})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := st.checkStorage(ctx, o.Storage, "hub check"); err != nil {
		return nil, err
	}
	layout, err := skregistry.OpenLayout(ctx, skregistry.HandlerOptions{RootDir: o.Root, Storage: o.Storage})
	if err != nil {
		return nil, err
	}
	rep := &CheckReport{}
	problem := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }

	// The metadata is read in one transaction (a consistent view, even
	// of a hub serving meanwhile); blobs are hashed after it ends.
	var (
		pkgs                []Package
		digests             = map[int64][]string{}
		orphanDigests, orph int
	)
	err = st.Tx(ctx, func(tx *StoreTx) error {
		all, err := tx.Packages(ctx, PackageQuery{})
		if err != nil {
			return err
		}
		for _, p := range all {
			if !published(p.Status) {
				continue
			}
			pkgs = append(pkgs, p)
			if digests[p.ID], err = tx.PackageDigests(ctx, p.ID); err != nil {
				return err
			}
		}
		orphanDigests, orph, err = tx.OrphanRows(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the hub's metadata: %w", err)
	}
	hashed := map[string]error{}
	for _, p := range pkgs {
		rep.Packages++
		digests := digests[p.ID]
		if len(digests) == 0 {
			problem("%s (%s) has no recorded content: submit or rescan it", p.Ref(), p.Status)
			digests = []string{p.Digest}
		}
		for _, d := range digests {
			dg, err := digest.Parse(d)
			if err != nil || dg.Algorithm() != digest.SHA256 {
				problem("%s records an invalid digest %q", p.Ref(), d)
				continue
			}
			herr, done := hashed[d]
			if !done {
				herr = layout.VerifyBlob(ctx, dg)
				hashed[d] = herr
				rep.Blobs++
			}
			if herr != nil {
				problem("%s: blob %s: %v", p.Ref(), d, herr)
				continue
			}
			if ok, err := layout.Linked(ctx, p.Repository(), dg); err != nil {
				problem("%s: blob %s: %v", p.Ref(), d, err)
			} else if !ok {
				problem("%s: blob %s is stored but not linked into repository %s", p.Ref(), d, p.Repository())
			}
		}
		if p.Status == StatusApproved {
			switch tag, err := layout.Tag(ctx, p.Repository(), p.Version); {
			case errors.Is(err, errdef.ErrNotFound):
				problem("%s: approved but its tag is missing", p.Ref())
			case err != nil:
				problem("%s: %v", p.Ref(), err)
			case tag != p.Digest:
				problem("%s: its tag points at %s, not its root %s (readers still get the root)", p.Ref(), tag, p.Digest)
			}
		}
	}
	if orphanDigests > 0 {
		problem("%d digest rows belong to no package (orphan metadata)", orphanDigests)
	}
	if orph > 0 {
		problem("%d approvals belong to no package (orphan metadata)", orph)
	}
	rep.Audit, err = st.VerifyAudit(ctx)
	if rep.Audit == nil {
		return nil, err
	}
	for _, p := range rep.Audit.Problems {
		problem("audit: %s", p)
	}
	rep.OK = len(rep.Problems) == 0
	if !rep.OK {
		return rep, fmt.Errorf("%w: %d problem(s), the first: %s", ErrInconsistent, len(rep.Problems), rep.Problems[0])
	}
	return rep, nil
}
