package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hub/hubtest"
)

func TestTOTPVectors(t *testing.T) {
	// RFC 6238 appendix B (SHA-1), truncated to 6 digits.
	secret := b32.EncodeToString([]byte("12345678901234567890"))
	for _, c := range []struct {
		unix int64
		want string
	}{{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"}, {1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"}} {
		got, err := TOTPCode(secret, c.unix/30)
		if err != nil || got != c.want {
			t.Errorf("T=%d: %s %v, want %s", c.unix, got, err, c.want)
		}
	}
	now := time.Unix(1111111111, 0)
	for _, c := range []struct {
		at    int64
		after int64
		ok    bool
	}{{1111111111, 0, true}, {1111111111 - 30, 0, true}, {1111111111 + 30, 0, true}, {1111111111 - 60, 0, false}, {1111111111 + 60, 0, false}, {1111111111, 1111111111 / 30, false}} {
		code, _ := TOTPCode(secret, c.at/30)
		if got := matchTOTP(secret, code, now, c.after) != 0; got != c.ok {
			t.Errorf("code of %d (after step %d) accepted=%v, want %v", c.at, c.after, got, c.ok)
		}
	}
}

func TestPassword(t *testing.T) {
	h := HashPassword("s3cret-pass")
	if !strings.HasPrefix(h, "$argon2id$") || !CheckPassword(h, "s3cret-pass") || CheckPassword(h, "s3cret-pasS") {
		t.Fatalf("hash %s", h)
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$x$y$z$w", h[:len(h)-4]} {
		if CheckPassword(bad, "s3cret-pass") {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newLimiter(3, time.Minute, func() time.Time { return now })
	for range 3 {
		if !l.allowed("a") {
			t.Fatal("limited early")
		}
		l.fail("a")
	}
	if l.allowed("a") || !l.allowed("b") {
		t.Fatal("limit not per key")
	}
	now = now.Add(61 * time.Second)
	if !l.allowed("a") {
		t.Fatal("window did not pass")
	}
}

func TestParseOCIPath(t *testing.T) {
	for _, c := range []struct {
		path string
		ok   bool
		want ociRequest
	}{
		{"/v2/", true, ociRequest{}},
		{"/v2/_catalog", true, ociRequest{kind: "catalog"}},
		{"/v2/acme/app/manifests/1.0", true, ociRequest{repo: "acme/app", owner: "acme", name: "app", kind: "manifests", ref: "1.0"}},
		{"/v2/acme/a/b/blobs/sha256:ab", true, ociRequest{repo: "acme/a/b", owner: "acme", name: "a/b", kind: "blobs", ref: "sha256:ab"}},
		{"/v2/acme/app/blobs/uploads/", true, ociRequest{repo: "acme/app", owner: "acme", name: "app", kind: "uploads"}},
		{"/v2/acme/app/blobs/uploads/uuid-1", true, ociRequest{repo: "acme/app", owner: "acme", name: "app", kind: "uploads", ref: "uuid-1"}},
		{"/v2/acme/app/tags/list", true, ociRequest{repo: "acme/app", owner: "acme", name: "app", kind: "tags"}},
		{"/v2/acme/app/referrers/sha256:ab", true, ociRequest{repo: "acme/app", owner: "acme", name: "app", kind: "referrers", ref: "sha256:ab"}},
		{"/v2/acme/../x/manifests/1", false, ociRequest{}},
		{"/v2/manifests/1", false, ociRequest{}},
		{"/v2/acme/app/other", false, ociRequest{}},
	} {
		got, ok := parseOCIPath(c.path)
		if ok != c.ok || got != c.want {
			t.Errorf("%s: %+v %v, want %+v %v", c.path, got, ok, c.want, c.ok)
		}
	}
}

func FuzzParseOCIPath(f *testing.F) {
	for _, s := range []string{"/v2/", "/v2/a/b/manifests/x", "/v2/a/blobs/uploads/", "/v2//blobs/x", "/v2/a/tags/list"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, ok := parseOCIPath(path)
		if ok && r.kind != "" && r.kind != "catalog" {
			if r.owner == "" || !strings.HasPrefix(r.repo, r.owner) || strings.Contains(r.repo, "..") {
				t.Fatalf("%q: %+v", path, r)
			}
		}
	})
}

func openTestStoreURL(t *testing.T, root, url string) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), StoreOptions{Root: root, DatabaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStoreReopenAndPermissions(t *testing.T) {
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testStoreReopenAndPermissions(t, hubtest.FreshSchema(t, b.URL)) })
	}
}

func testStoreReopenAndPermissions(t *testing.T, url string) {
	ctx := context.Background()
	root := t.TempDir()
	s := openTestStoreURL(t, root, url)
	if err := s.AddUser(ctx, "ann", "password1", false); err != nil {
		t.Fatal(err)
	}
	if err := s.AddUser(ctx, "ann", "password1", false); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate user: %v", err)
	}
	if err := s.AddUser(ctx, "Bad Name", "password1", false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	s.AddUser(ctx, "ben", "password1", false)
	if err := s.AddGroupMember(ctx, "ops", "ben"); err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(ctx, "acme", "group:ops", LevelWrite); err != nil {
		t.Fatal(err)
	}
	if err := s.Grant(ctx, "acme", "ann", LevelRead); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, owner string
		want        Level
	}{{"ann", "acme", LevelRead}, {"ben", "acme", LevelWrite}, {"ann", "ann", LevelNone}, {"ann", "other", LevelNone}} {
		if got, err := s.Level(ctx, c.user, c.owner); err != nil || got != c.want {
			t.Errorf("%s on %s: %v %v, want %v", c.user, c.owner, got, err, c.want)
		}
	}
	s.Close()
	// Reopening migrates nothing and keeps the data.
	s2 := openTestStoreURL(t, root, url)
	if l, _ := s2.Level(ctx, "ben", "acme"); l != LevelWrite {
		t.Fatalf("after reopen: %v", l)
	}
}

func TestAuditTamper(t *testing.T) {
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testAuditTamper(t, b.URL) })
	}
}

func testAuditTamper(t *testing.T, url string) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		tamper []string
		want   string
	}{
		{"intact", nil, ""},
		{"edited", []string{`UPDATE audit SET actor = 'mallory' WHERE seq = 3`}, "edited"},
		{"deleted", []string{`DELETE FROM audit WHERE seq = 2`}, "missing"},
		{"truncated", []string{`DELETE FROM audit WHERE seq = 5`}, "deleted from the end"},
		{"reordered", []string{
			`UPDATE audit SET seq = 100 WHERE seq = 2`, `UPDATE audit SET seq = 2 WHERE seq = 3`, `UPDATE audit SET seq = 3 WHERE seq = 100`,
		}, "link"},
		{"rehashed edit", []string{`UPDATE audit SET target = 'x', hash = 'deadbeef' WHERE seq = 4`}, "edited"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			s := openTestStoreURL(t, root, hubtest.FreshSchema(t, url))
			for i := range 5 {
				if err := s.Audit(ctx, "ann", ActionPush, "acme/app:1."+string(rune('0'+i)), map[string]any{"i": i}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.VerifyAudit(ctx); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			// Tamper with the database directly, as an intruder would.
			for _, q := range c.tamper {
				if _, err := s.db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			rep, err := s.VerifyAudit(ctx)
			if c.want == "" {
				if err != nil || !rep.OK || rep.Entries != 5 {
					t.Fatalf("intact log: %v %+v", err, rep)
				}
				return
			}
			if !errors.Is(err, ErrAuditTampered) || rep.OK {
				t.Fatalf("tampering not detected: %v %+v", err, rep)
			}
			if !strings.Contains(strings.Join(rep.Problems, "\n"), c.want) {
				t.Errorf("problems %q do not mention %q", rep.Problems, c.want)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_000_000, 0)
	s, err := OpenStore(ctx, StoreOptions{Root: t.TempDir(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddUser(ctx, "ann", "password1", false)
	tok, err := s.CreateToken(ctx, "ann", "ci", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var stored string
	s.db.QueryRow(`SELECT hash FROM tokens`).Scan(&stored)
	if stored == tok.Secret || strings.Contains(stored, tok.Secret[len(TokenPrefix):]) {
		t.Fatal("the token is stored in clear")
	}
	if u, err := s.TokenUser(ctx, tok.Secret); err != nil || u != "ann" {
		t.Fatalf("%s %v", u, err)
	}
	now = now.Add(time.Minute)
	if _, err := s.TokenUser(ctx, tok.Secret); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := s.TokenUser(ctx, TokenPrefix+"nope"); !errors.Is(err, ErrBadCredential) {
		t.Fatalf("unknown: %v", err)
	}
}

// TestAuditAppendChecksHead: an append after the last entries (or the
// head file) were deleted is refused and logged, so the next action
// cannot launder the truncation; verify keeps reporting it; a reseal
// records the gap and lets the hub record again.
func TestAuditAppendChecksHead(t *testing.T) {
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testAuditAppendChecksHead(t, b.URL) })
	}
}

func testAuditAppendChecksHead(t *testing.T, url string) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		tamper func(s *Store, root string) error
		want   string
	}{
		{"last row deleted", func(s *Store, _ string) error {
			_, err := s.db.Exec(`DELETE FROM audit WHERE seq = 3`)
			return err
		}, "deleted from the end"},
		{"last rows rewritten", func(s *Store, _ string) error {
			_, err := s.db.Exec(`UPDATE audit SET hash = 'x', target = 'y' WHERE seq = 3`)
			return err
		}, "rewritten"},
		{"head file deleted", func(_ *Store, root string) error {
			return os.Remove(filepath.Join(root, auditHeadFile))
		}, "missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			s := openTestStoreURL(t, root, hubtest.FreshSchema(t, url))
			var logs bytes.Buffer
			s.logger = slog.New(slog.NewTextHandler(&logs, nil))
			for i := range 3 {
				if err := s.Audit(ctx, "ann", ActionPush, fmt.Sprintf("acme/app:1.%d", i), nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.tamper(s, root); err != nil {
				t.Fatal(err)
			}
			err := s.Audit(ctx, "ann", ActionApprove, "acme/app:1.0", nil)
			if !errors.Is(err, ErrAuditFailed) || !errors.Is(err, ErrAuditTampered) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("append after tampering: %v, want a refusal naming %q", err, c.want)
			}
			if !strings.Contains(logs.String(), "ALARM") {
				t.Errorf("no alarm logged: %s", logs.String())
			}
			// A change audited with it is not made either.
			if err := s.AddUserAs(ctx, "root", "mallory", "password1", true); !errors.Is(err, ErrAuditFailed) {
				t.Fatalf("audited change after tampering: %v", err)
			}
			if _, err := s.User(ctx, "mallory"); !errors.Is(err, ErrNotFound) {
				t.Fatal("the change was made")
			}
			rep, err := s.VerifyAudit(ctx)
			if !errors.Is(err, ErrAuditTampered) || !strings.Contains(strings.Join(rep.Problems, "\n"), c.want) {
				t.Fatalf("verify after the refused append: %v %+v", err, rep)
			}
			// Resealing records the problems and the hub records again.
			if rep, err := s.ResealAudit(ctx, "local:ops"); err != nil || rep.OK {
				t.Fatalf("reseal: %v %+v", err, rep)
			}
			if err := s.Audit(ctx, "ann", ActionApprove, "acme/app:1.0", nil); err != nil {
				t.Fatalf("append after the reseal: %v", err)
			}
			es, _ := s.AuditLog(ctx, AuditQuery{Limit: 1000})
			var resealed *AuditEntry
			for i := range es {
				if es[i].Action == ActionAuditReseal {
					resealed = &es[i]
				}
			}
			if resealed == nil || !strings.Contains(resealed.Details, c.want) {
				t.Fatalf("the reseal entry does not record the problem: %+v", resealed)
			}
		})
	}
}

// TestDatabaseOwnerOnly: hub.db holds password and token hashes: it is
// created 0600 (its -wal and -shm files too), and an existing one
// readable by others is tightened; the audit head is 0600 as well.
func TestDatabaseOwnerOnly(t *testing.T) {
	for _, pre := range []bool{false, true} {
		root := t.TempDir()
		path := filepath.Join(root, DatabaseFile)
		if pre {
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, 0o644)
		}
		s := openTestStoreURL(t, root, "")
		if err := s.AddUser(context.Background(), "ann", "password1", false); err != nil {
			t.Fatal(err)
		}
		if err := s.Audit(context.Background(), "ann", ActionLogin, "ann", nil); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm", filepath.Join(root, auditHeadFile)} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("existing=%v: %s has mode %v, want 0600", pre, filepath.Base(p), fi.Mode().Perm())
			}
		}
	}
}
