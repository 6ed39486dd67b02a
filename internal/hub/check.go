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

	pkgs, err := st.Packages(ctx, PackageQuery{})
	if err != nil {
		return nil, err
	}
	hashed := map[string]error{}
	for _, p := range pkgs {
		if !published(p.Status) {
			continue
		}
		rep.Packages++
		digests, err := st.packageDigests(ctx, p.ID)
		if err != nil {
			return nil, err
		}
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
	for _, q := range []struct{ table, what string }{{"package_digests", "digest rows"}, {"approvals", "approvals"}} {
		var n int
		if err := st.row(ctx, st.db, `SELECT COUNT(*) FROM `+q.table+` WHERE package_id NOT IN (SELECT id FROM packages)`).Scan(&n); err != nil {
			return nil, err
		}
		if n > 0 {
			problem("%d %s belong to no package (orphan metadata)", n, q.what)
		}
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

// packageDigests lists the digests recorded for a package.
func (s *Store) packageDigests(ctx context.Context, id int64) ([]string, error) {
	rows, err := s.rows(ctx, s.db, `SELECT digest FROM package_digests WHERE package_id = ? ORDER BY digest`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
