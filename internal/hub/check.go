package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// ErrInconsistent reports a hub whose metadata, storage or audit log do
// not agree (see [Check]).
var ErrInconsistent = errors.New("the hub is inconsistent")

// registryV2 is where distribution's filesystem driver keeps its data,
// under Root/storage.
const registryV2 = "storage/docker/registry/v2"

// CheckOptions configures [Check].
type CheckOptions struct {
	// Root is the hub directory; DatabaseURL its PostgreSQL database,
	// if it uses one.
	Root, DatabaseURL string
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

// Check checks a hub directory: every digest recorded for a pending,
// approved or blocked package (its root and everything reachable, and
// its signatures) is in blob storage with the right sha256 and linked
// into the package's repository; an approved version's tag points at its
// root; no approval or digest row belongs to a package that does not
// exist; and the audit chain verifies. The error wraps ErrInconsistent
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
	if err := st.checkFilesystem(ctx, "hub check"); err != nil {
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
		repoDir := filepath.Join(o.Root, filepath.FromSlash(registryV2), "repositories", filepath.FromSlash(p.Repository()))
		for _, d := range digests {
			dg, err := digest.Parse(d)
			if err != nil || dg.Algorithm() != digest.SHA256 {
				problem("%s records an invalid digest %q", p.Ref(), d)
				continue
			}
			herr, done := hashed[d]
			if !done {
				herr = checkBlob(filepath.Join(o.Root, filepath.FromSlash(registryV2), "blobs", "sha256", dg.Encoded()[:2], dg.Encoded(), "data"), dg)
				hashed[d] = herr
				rep.Blobs++
			}
			if herr != nil {
				problem("%s: blob %s: %v", p.Ref(), d, herr)
				continue
			}
			if !linked(repoDir, dg) {
				problem("%s: blob %s is stored but not linked into repository %s", p.Ref(), d, p.Repository())
			}
		}
		if p.Status == StatusApproved {
			b, err := os.ReadFile(filepath.Join(repoDir, "_manifests", "tags", p.Version, "current", "link"))
			if err != nil {
				problem("%s: approved but its tag is missing", p.Ref())
			} else if strings.TrimSpace(string(b)) != p.Digest {
				problem("%s: its tag points at %s, not its root %s (readers still get the root)", p.Ref(), strings.TrimSpace(string(b)), p.Digest)
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

// checkBlob hashes a blob's data file.
func checkBlob(p string, d digest.Digest) error {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return errors.New("missing from storage")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Encoded() {
		return fmt.Errorf("its content has sha256 %s: the stored file is corrupt", got)
	}
	return nil
}

// linked reports whether repository repoDir links blob d (as a layer or
// config, or as a manifest revision).
func linked(repoDir string, d digest.Digest) bool {
	for _, p := range []string{
		filepath.Join(repoDir, "_layers", "sha256", d.Encoded(), "link"),
		filepath.Join(repoDir, "_manifests", "revisions", "sha256", d.Encoded(), "link"),
	} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
