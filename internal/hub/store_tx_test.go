package hub

import (
	"context"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/hub/hubtest"
)

// TestStoreTx checks the store's transaction API on every backend: a
// transaction is committed when its function returns nil, rolled back
// (with the audit entry of an audited change) when it returns an error
// or panics, and the store serves the next transaction after a panic
// (SQLite's one connection and PostgreSQL's audit lock are released).
func TestStoreTx(t *testing.T) {
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testStoreTx(t, b.URL) })
	}
}

func testStoreTx(t *testing.T, url string) {
	errBoom := errors.New("boom")
	gates := []GateResult{{Name: GateStructure, Passed: true}}
	for _, c := range []struct {
		name string
		// audited runs the change with an audit entry.
		audited bool
		// change runs inside the transaction on package p (quarantined).
		change func(ctx context.Context, tx *StoreTx, p *Package) error
		// wantErr is the error the transaction returns; wantPanic the
		// value it panics with.
		wantErr   error
		wantPanic any
		// want is p's status afterwards.
		want string
	}{
		{name: "commit", change: func(ctx context.Context, tx *StoreTx, p *Package) error {
			return tx.SetPackageGates(ctx, p, StatusPending, gates)
		}, want: StatusPending},
		{name: "commit audited", audited: true, change: func(ctx context.Context, tx *StoreTx, p *Package) error {
			return tx.SetPackageGates(ctx, p, StatusPending, gates)
		}, want: StatusPending},
		{name: "error", change: func(ctx context.Context, tx *StoreTx, p *Package) error {
			if err := tx.SetPackageGates(ctx, p, StatusPending, gates); err != nil {
				return err
			}
			return errBoom
		}, wantErr: errBoom, want: StatusQuarantined},
		{name: "error audited", audited: true, change: func(ctx context.Context, tx *StoreTx, p *Package) error {
			if err := tx.SetPackageGates(ctx, p, StatusPending, gates); err != nil {
				return err
			}
			return errBoom
		}, wantErr: errBoom, want: StatusQuarantined},
		{name: "panic", change: func(ctx context.Context, tx *StoreTx, p *Package) error {
			if err := tx.SetPackageGates(ctx, p, StatusPending, gates); err != nil {
				return err
			}
			panic("boom")
		}, wantPanic: "boom", want: StatusQuarantined},
		{name: "panic audited", audited: true, change: func(ctx context.Context, tx *StoreTx, p *Package) error {
			if err := tx.SetPackageGates(ctx, p, StatusPending, gates); err != nil {
				return err
			}
			panic("boom")
		}, wantPanic: "boom", want: StatusQuarantined},
		{name: "changed meanwhile", change: func(ctx context.Context, tx *StoreTx, p *Package) error {
			stale := *p
			stale.Status = StatusBlocked
			return tx.SetPackageGates(ctx, &stale, StatusPending, gates)
		}, wantErr: errChanged, want: StatusQuarantined},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dir, dbURL := t.TempDir(), hubtest.FreshSchema(t, url)
			s := openTestStoreURL(t, dir, dbURL)
			root := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("root"), Size: 4}
			p, err := s.RecordPush(ctx, "acme", "app", "1.0.0", root, "ann")
			if err != nil {
				t.Fatal(err)
			}
			before := auditLen(t, s)
			run := func() (err error, panicked any) {
				defer func() { panicked = recover() }()
				f := func(tx *StoreTx) error { return c.change(ctx, tx, p) }
				if c.audited {
					return s.audited(ctx, &auditRecord{"ann", ActionRescan, p.Ref(), nil}, f), nil
				}
				return s.Tx(ctx, f), nil
			}
			err, panicked := run()
			if panicked != c.wantPanic {
				t.Fatalf("panic %v, want %v", panicked, c.wantPanic)
			}
			if c.wantErr == nil && err != nil || c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Fatalf("error %v, want %v", err, c.wantErr)
			}
			// The next transactions run (a panic left no transaction or
			// lock behind) and see what was committed.
			got, err := s.Package(ctx, "acme", "app", "1.0.0")
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != c.want {
				t.Errorf("status %s, want %s", got.Status, c.want)
			}
			wantAudit := before
			if c.audited && c.wantErr == nil && c.wantPanic == nil {
				wantAudit++
			}
			if n := auditLen(t, s); n != wantAudit {
				t.Errorf("%d audit entries, want %d", n, wantAudit)
			}
			if err := s.Audit(ctx, "ann", ActionLogin, "ann", nil); err != nil {
				t.Fatalf("audit append after the transaction: %v", err)
			}
			// So does another store on the same database (a replica): no
			// lock stayed with a pooled connection.
			other := openTestStoreURL(t, dir, dbURL)
			if err := other.Audit(ctx, "ben", ActionLogin, "ben", nil); err != nil {
				t.Fatalf("audit append by another store: %v", err)
			}
			if err := s.Tx(ctx, func(tx *StoreTx) error { return tx.DeleteApprovals(ctx, p.ID) }); err != nil {
				t.Fatalf("transaction after the transaction: %v", err)
			}
			if rep, err := s.VerifyAudit(ctx); err != nil {
				t.Fatalf("audit: %v %+v", err, rep)
			}
		})
	}
}

// TestStoreTxReads checks the read operations of a transaction.
func TestStoreTxReads(t *testing.T) {
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := openTestStoreURL(t, t.TempDir(), hubtest.FreshSchema(t, b.URL))
			root := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("root"), Size: 4}
			p, err := s.RecordPush(ctx, "acme", "app", "1.0.0", root, "ann")
			if err != nil {
				t.Fatal(err)
			}
			digests := []string{digest.FromString("b").String(), digest.FromString("a").String()}
			if err := s.setGated(ctx, p, StatusQuarantined, StatusPending, nil, nil, nil, digests, nil); err != nil {
				t.Fatal(err)
			}
			err = s.Tx(ctx, func(tx *StoreTx) error {
				ps, err := tx.Packages(ctx, PackageQuery{Status: StatusPending})
				if err != nil || len(ps) != 1 || ps[0].ID != p.ID {
					t.Errorf("packages: %v %v", ps, err)
				}
				got, err := tx.PackageDigests(ctx, p.ID)
				if err != nil || !slices.Equal(got, slices.Sorted(slices.Values(digests))) {
					t.Errorf("digests: %v %v, want them sorted", got, err)
				}
				if d, a, err := tx.OrphanRows(ctx); err != nil || d != 0 || a != 0 {
					t.Errorf("orphans: %d %d %v", d, a, err)
				}
				// Rows of a package that is gone are orphans.
				if err := tx.exec(ctx, `DELETE FROM packages WHERE id = ?`, p.ID); err != nil {
					return err
				}
				if d, a, err := tx.OrphanRows(ctx); err != nil || d != 2 || a != 0 {
					t.Errorf("orphans after deleting the package: %d %d %v", d, a, err)
				}
				return errors.New("roll back")
			})
			if err == nil {
				t.Fatal("the transaction did not fail")
			}
			if got, err := s.PackageDigests(ctx, p.ID); err != nil || len(got) != 2 {
				t.Errorf("after the rollback: %v %v", got, err)
			}
		})
	}
}

func auditLen(t *testing.T, s *Store) int {
	t.Helper()
	rep, err := s.VerifyAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(rep.Entries)
}

// TestSQLStaysInTheStore checks that only the store touches the
// database: outside store.go, store_tx.go and the methods of Store and
// StoreTx (and the row scanners beside them), no code names database/sql or a driver, or reaches for
// the store's handle, its transaction or its raw query helpers.
func TestSQLStaysInTheStore(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	internals := map[string]bool{"db": true, "stx": true, "rebind": true, "exec": true, "row": true, "rows": true, "affected": true, "withLock": true}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if (strings.Contains(p, "pgx") || strings.Contains(p, "sqlite")) && name != "store.go" {
				t.Errorf("%s imports the database driver %s: only store.go does", fset.Position(imp.Pos()), p)
			}
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || name == "store.go" || name == "store_tx.go" || storeFunc(fn) {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == "sql" {
					t.Errorf("%s: %s uses database/sql (sql.%s): add a typed operation to the store (store_tx.go) instead", fset.Position(sel.Pos()), fn.Name.Name, sel.Sel.Name)
				}
				if internals[sel.Sel.Name] {
					t.Errorf("%s: %s reaches into the store (.%s): add a typed operation to the store (store_tx.go) instead", fset.Position(sel.Pos()), fn.Name.Name, sel.Sel.Name)
				}
				return true
			})
		}
	}
}

// storeFunc reports whether fn, outside store.go and store_tx.go,
// belongs to the store: a method of Store or StoreTx, or a row scanner.
func storeFunc(fn *ast.FuncDecl) bool {
	if fn.Recv != nil && len(fn.Recv.List) == 1 {
		if star, ok := fn.Recv.List[0].Type.(*ast.StarExpr); ok {
			if id, ok := star.X.(*ast.Ident); ok && (id.Name == "Store" || id.Name == "StoreTx") {
				return true
			}
		}
	}
	return strings.HasPrefix(fn.Name.Name, "scan")
}
