package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
)

// TestListingsFiltered: the tag list and the catalog are the registry's
// answers filtered by the hub: a reader sees approved versions only, a
// writer every tag, and the catalog names only repositories whose owner
// the caller may read.
func TestListingsFiltered(t *testing.T) {
	ctx := context.Background()
	th := newTestHub(t, "")
	if err := th.h.store.Grant(ctx, "other", "alice", LevelWrite); err != nil {
		t.Fatal(err)
	}
	alice, bob := th.client(t, "alice"), th.client(t, "bob")
	dir := t.TempDir()
	for i, c := range []struct{ owner, name, version string }{{"acme", "app", "1.0.0"}, {"acme", "app", "2.0.0"}, {"other", "tool", "1.0.0"}} {
		if _, err := alice.Push(ctx, hubtest.Archive(t, dir, c.name, c.version, uint64(i+1), th.key), c.owner, hubclient.PushOptions{}); err != nil {
			t.Fatalf("push %v: %v", c, err)
		}
	}
	if _, err := bob.Approve(ctx, "acme", "app", "1.0.0", ""); err != nil {
		t.Fatal(err)
	}
	get := func(user, path string, out any) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+th.host+path, nil)
		req.SetBasicAuth(user, testPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatalf("GET %s as %s: %v", path, user, err)
			}
		}
		return resp.StatusCode
	}
	for _, c := range []struct {
		user string
		want []string
	}{{"carol", []string{"1.0.0"}}, {"alice", []string{"1.0.0", "2.0.0"}}} {
		var list struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		}
		if s := get(c.user, "/v2/acme/app/tags/list", &list); s != http.StatusOK || list.Name != "acme/app" || !slices.Equal(list.Tags, c.want) {
			t.Errorf("tags as %s: %d %+v, want %v", c.user, s, list, c.want)
		}
	}
	for _, c := range []struct {
		user string
		want []string
	}{{"carol", []string{"acme/app"}}, {"alice", []string{"acme/app", "other/tool"}}} {
		var cat struct {
			Repositories []string `json:"repositories"`
		}
		if s := get(c.user, "/v2/_catalog", &cat); s != http.StatusOK || !slices.Equal(cat.Repositories, c.want) {
			t.Errorf("catalog as %s: %d %+v, want %v", c.user, s, cat, c.want)
		}
	}
}
