package kube

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestApplyTier: objects are applied in waves by Helm's kind order, at
// most applyParallel at a time; a failed wave stops the later ones; the
// references come back in the input order.
func TestApplyTier(t *testing.T) {
	obj := func(kind, name string) planned {
		return planned{ref: ObjectRef{Kind: kind, Namespace: "ns", Name: name}}
	}
	boom := errors.New("boom")
	tests := []struct {
		name     string
		in       []planned
		fail     string // name whose apply fails
		wantRefs []string
		wantErr  bool
		// wantBefore: each pair's first name is applied before the second starts
		wantBefore [][2]string
	}{
		{
			name: "kinds in waves, refs in input order",
			in: []planned{obj("Deployment", "web"), obj("Widget", "w"), obj("ConfigMap", "cfg"), obj("ServiceAccount", "sa"),
				obj("Service", "svc"), obj("RoleBinding", "rb"), obj("Role", "r")},
			wantRefs:   []string{"web", "w", "cfg", "sa", "svc", "rb", "r"},
			wantBefore: [][2]string{{"sa", "cfg"}, {"cfg", "r"}, {"r", "rb"}, {"rb", "svc"}, {"svc", "web"}, {"web", "w"}},
		},
		{
			name:     "a failed wave stops the later ones",
			in:       []planned{obj("Deployment", "web"), obj("ConfigMap", "a"), obj("ConfigMap", "bad"), obj("ConfigMap", "c")},
			fail:     "bad",
			wantRefs: []string{"a", "c"},
			wantErr:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			started, finished := map[string]int{}, map[string]int{}
			step := 0
			apply := func(p planned) error {
				mu.Lock()
				step++
				started[p.ref.Name] = step
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				step++
				finished[p.ref.Name] = step
				mu.Unlock()
				if p.ref.Name == tt.fail {
					return boom
				}
				return nil
			}
			refs, err := applyTier(tt.in, apply)
			if (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, boom)) {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			var names []string
			for _, r := range refs {
				names = append(names, r.Name)
			}
			if !slices.Equal(names, tt.wantRefs) {
				t.Errorf("refs %v, want %v", names, tt.wantRefs)
			}
			for _, b := range tt.wantBefore {
				if finished[b[0]] > started[b[1]] {
					t.Errorf("%s started before %s finished", b[1], b[0])
				}
			}
			if tt.fail != "" {
				if _, ok := started["web"]; ok {
					t.Error("the Deployment was applied after the ConfigMap wave failed")
				}
			}
		})
	}
}

// TestApplyTierBounded: one wave of many objects runs concurrently, but
// never more than applyParallel at once.
func TestApplyTierBounded(t *testing.T) {
	var in []planned
	for i := range 5 * applyParallel {
		in = append(in, planned{ref: ObjectRef{Kind: "ConfigMap", Name: string(rune('a' + i))}})
	}
	var cur, peak atomic.Int32
	refs, err := applyTier(in, func(planned) error {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		cur.Add(-1)
		return nil
	})
	if err != nil || len(refs) != len(in) {
		t.Fatalf("%d refs, %v", len(refs), err)
	}
	if p := peak.Load(); p < 2 || p > applyParallel {
		t.Errorf("peak concurrency %d, want 2..%d", p, applyParallel)
	}
}
