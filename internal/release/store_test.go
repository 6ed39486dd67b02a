package release

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func rec(ns, dep string, rev int, st Status) *Record {
	return &Record{
		Deployment: dep, Namespace: ns, Revision: rev, Status: st,
		Package: Package{Name: "demo", Version: "1.0.0", Root: "sha256:" + strings.Repeat("a", 64)},
	}
}

// seed creates records through the store's driver, in order.
func seed(t *testing.T, d Driver, rs ...*Record) {
	t.Helper()
	for _, r := range rs {
		if err := d.Create(context.Background(), r); err != nil {
			t.Fatalf("seeding %s: %v", r, err)
		}
	}
}

func revisions(rs []*Record) []int {
	out := []int{}
	for _, r := range rs {
		out = append(out, r.Revision)
	}
	return out
}

func TestStoreQueries(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name         string
		records      []*Record
		wantLatest   int // 0: ErrNotFound
		wantDeployed int // 0: ErrNotFound
		wantNext     int
	}{
		{"empty", nil, 0, 0, 1},
		{"one pending", []*Record{rec("ns", "app", 1, StatusPendingInstall)}, 1, 0, 2},
		{"deployed then failed", []*Record{rec("ns", "app", 1, StatusDeployed), rec("ns", "app", 2, StatusFailed)}, 2, 1, 3},
		{"superseded chain", []*Record{
			rec("ns", "app", 1, StatusSuperseded), rec("ns", "app", 2, StatusSuperseded), rec("ns", "app", 3, StatusDeployed),
		}, 3, 3, 4},
		{"gaps and other deployments", []*Record{
			rec("ns", "app", 2, StatusSuperseded), rec("ns", "app", 7, StatusDeployed),
			rec("ns", "other", 9, StatusDeployed), rec("ns2", "app", 11, StatusDeployed),
		}, 7, 7, 8},
		{"uninstalled", []*Record{rec("ns", "app", 1, StatusSuperseded), rec("ns", "app", 2, StatusUninstalled)}, 2, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewMemory()
			seed(t, d, tt.records...)
			s := NewStore(d, StoreOptions{})

			latest, err := s.Latest(ctx, "ns", "app")
			checkRev(t, "Latest", latest, err, tt.wantLatest)
			deployed, err := s.Deployed(ctx, "ns", "app")
			checkRev(t, "Deployed", deployed, err, tt.wantDeployed)
			next, err := s.NextRevision(ctx, "ns", "app")
			if err != nil || next != tt.wantNext {
				t.Errorf("NextRevision = %d, %v; want %d", next, err, tt.wantNext)
			}
		})
	}
}

func checkRev(t *testing.T, what string, r *Record, err error, want int) {
	t.Helper()
	if want == 0 {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", what, err)
		}
		return
	}
	if err != nil || r.Revision != want {
		t.Errorf("%s = %v, %v; want revision %d", what, r, err, want)
	}
}

func TestStoreCreatePrunesHistory(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		maxHistory int
		existing   []Status // revisions 1..n
		want       []int    // remaining revisions after creating n+1
	}{
		{"unlimited", 0, []Status{StatusSuperseded, StatusSuperseded, StatusDeployed}, []int{1, 2, 3, 4}},
		{"under limit", 5, []Status{StatusSuperseded, StatusDeployed}, []int{1, 2, 3}},
		{"drops oldest", 2, []Status{StatusSuperseded, StatusSuperseded, StatusDeployed}, []int{3, 4}},
		{"keeps old deployed", 2, []Status{StatusDeployed, StatusFailed, StatusFailed}, []int{1, 4}},
		{"limit one keeps deployed and new", 1, []Status{StatusSuperseded, StatusDeployed}, []int{2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewMemory()
			for i, st := range tt.existing {
				seed(t, d, rec("ns", "app", i+1, st))
			}
			seed(t, d, rec("ns", "other", 1, StatusSuperseded)) // must survive
			s := NewStore(d, StoreOptions{MaxHistory: tt.maxHistory, Now: func() time.Time { return epoch }})
			r := rec("ns", "app", 0, StatusPendingUpgrade)
			if err := s.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			if r.Revision != len(tt.existing)+1 {
				t.Errorf("Create gave revision %d, want %d", r.Revision, len(tt.existing)+1)
			}
			if !r.Created.Equal(epoch) || !r.Updated.Equal(epoch) {
				t.Errorf("Created, Updated = %v, %v; want %v", r.Created, r.Updated, epoch)
			}
			h, err := s.History(ctx, "ns", "app")
			if err != nil {
				t.Fatal(err)
			}
			if got := revisions(h); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("history = %v, want %v", got, tt.want)
			}
			if _, err := s.Latest(ctx, "ns", "other"); err != nil {
				t.Errorf("other deployment: %v", err)
			}
		})
	}
}

func TestStoreCreateExisting(t *testing.T) {
	d := NewMemory()
	seed(t, d, rec("ns", "app", 1, StatusDeployed))
	err := NewStore(d, StoreOptions{}).Create(context.Background(), rec("ns", "app", 1, StatusDeployed))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("err = %v, want ErrExists", err)
	}
}

func TestStoreUpdateConflict(t *testing.T) {
	ctx := context.Background()
	s := NewStore(NewMemory(), StoreOptions{})
	if err := s.Create(ctx, rec("ns", "app", 1, StatusPendingInstall)); err != nil {
		t.Fatal(err)
	}
	a, _ := s.Get(ctx, "ns", "app", 1)
	b, _ := s.Get(ctx, "ns", "app", 1)
	a.Status = StatusDeployed
	if err := s.Update(ctx, a); err != nil {
		t.Fatalf("first update: %v", err)
	}
	b.Status = StatusFailed
	if err := s.Update(ctx, b); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: err = %v, want ErrConflict", err)
	}
	a.Description = "again"
	if err := s.Update(ctx, a); err != nil {
		t.Fatalf("update after own update: %v", err)
	}
	if err := s.Update(ctx, rec("ns", "app", 5, StatusFailed)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of missing revision: err = %v, want ErrNotFound", err)
	}
}

func TestStoreDeploymentsAndPurge(t *testing.T) {
	ctx := context.Background()
	d := NewMemory()
	seed(t, d,
		rec("b", "web", 1, StatusSuperseded), rec("b", "web", 2, StatusDeployed),
		rec("a", "db", 1, StatusFailed),
		rec("a", "api", 3, StatusDeployed), rec("a", "api", 4, StatusPendingUpgrade),
	)
	s := NewStore(d, StoreOptions{})
	tests := []struct {
		ns   string
		want []string
	}{
		{"", []string{"a/api@4", "a/db@1", "b/web@2"}},
		{"a", []string{"a/api@4", "a/db@1"}},
		{"c", nil},
	}
	for _, tt := range tests {
		got, err := s.Deployments(ctx, tt.ns)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, r := range got {
			keys = append(keys, r.Key()+"@"+strconv.Itoa(r.Revision))
		}
		if !reflect.DeepEqual(keys, tt.want) {
			t.Errorf("Deployments(%q) = %v, want %v", tt.ns, keys, tt.want)
		}
	}
	if err := s.Purge(ctx, "a", "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.History(ctx, "a", "api"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Purge: err = %v, want ErrNotFound", err)
	}
	err := s.Purge(ctx, "a", "api")
	var nf *NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "skiff list -A") {
		t.Errorf("Purge of missing: err = %v, want a NotFoundError pointing at skiff list -A", err)
	}
}

func TestRecordValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Record)
		ok     bool
	}{
		{"valid", func(*Record) {}, true},
		{"uppercase name", func(r *Record) { r.Deployment = "App" }, false},
		{"empty name", func(r *Record) { r.Deployment = "" }, false},
		{"name too long", func(r *Record) { r.Deployment = strings.Repeat("a", 64) }, false},
		{"dotted namespace", func(r *Record) { r.Namespace = "a.b" }, false},
		{"revision zero", func(r *Record) { r.Revision = 0 }, false},
		{"unknown status", func(r *Record) { r.Status = "sleeping" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rec("ns", "app", 1, StatusDeployed)
			tt.modify(r)
			err := r.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestMemoryReturnsCopies(t *testing.T) {
	ctx := context.Background()
	d := NewMemory()
	r := rec("ns", "app", 1, StatusDeployed)
	r.Values = map[string]any{"a": map[string]any{"b": 1.0}}
	r.Components = []Component{{Name: "c", Kind: KindManifests, Objects: []Object{{Version: "v1", Kind: "ConfigMap", Name: "x"}}}}
	seed(t, d, r)
	r.Values["a"].(map[string]any)["b"] = 2.0
	r.Components[0].Objects[0].Name = "changed"
	got, err := d.Get(ctx, "ns", "app", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Values["a"].(map[string]any)["b"] != 1.0 || got.Components[0].Objects[0].Name != "x" {
		t.Errorf("stored record changed through the caller's copy: %+v", got)
	}
}
