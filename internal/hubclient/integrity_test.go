package hubclient_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/hub"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
	"github.com/skiffhq/skiff/internal/hubclient"
)

// rawDo sends a registry request with optional basic credentials and
// returns the status and body.
func rawDo(t *testing.T, th *testHub, method, path, user string, body []byte, contentType string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+th.host+path, bytes.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", ocispec.MediaTypeImageIndex+", "+ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// uploadBlob uploads b into repo as user (POST, then PUT).
func uploadBlob(t *testing.T, th *testHub, repo, user string, b []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+th.host+"/v2/"+repo+"/blobs/uploads/", nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || loc == "" {
		t.Fatalf("starting an upload: %s", resp.Status)
	}
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + th.host + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	req, _ = http.NewRequest(http.MethodPut, loc+sep+"digest="+digest.FromBytes(b).String(), bytes.NewReader(b))
	req.SetBasicAuth(user, password)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("finishing an upload: %s", resp.Status)
	}
}

// archiveContent returns every manifest digest of an archive's package
// (root first) and every blob digest, with the bytes of its first image
// manifest.
func archiveContent(t *testing.T, path string) (manifests, blobs []string, image []byte) {
	t.Helper()
	ctx := t.Context()
	a, err := bundle.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var walk func(d ocispec.Descriptor)
	walk = func(d ocispec.Descriptor) {
		switch d.MediaType {
		case ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest:
		default:
			blobs = append(blobs, d.Digest.String())
			return
		}
		manifests = append(manifests, d.Digest.String())
		rc, err := a.Fetch(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		var m struct {
			Config    *ocispec.Descriptor  `json:"config"`
			Layers    []ocispec.Descriptor `json:"layers"`
			Manifests []ocispec.Descriptor `json:"manifests"`
		}
		json.Unmarshal(b, &m)
		if d.MediaType == ocispec.MediaTypeImageManifest && image == nil && m.Config != nil && m.Config.MediaType == ocispec.MediaTypeImageConfig {
			image = b
		}
		if m.Config != nil {
			walk(*m.Config)
		}
		for _, c := range append(m.Layers, m.Manifests...) {
			walk(c)
		}
	}
	walk(a.Root())
	return manifests, blobs, image
}

// TestRegistryDeleteAndPut: no role can delete, through /v2/, any
// content of a quarantined or approved package (its root, version tag,
// child manifests, blobs or signatures); writers can delete other
// content; every delete is audited; the approved package still pulls.
func TestRegistryDeleteAndPut(t *testing.T) {
	th := newTestHub(t, hub.Options{})
	ctx := th.ctx
	dir := t.TempDir()
	alice, bob, carol := th.client(t, "alice"), th.client(t, "bob"), th.client(t, "carol")
	archive := hubtest.Archive(t, dir, "app", "1.0.0", 1, th.key)
	res, err := alice.Push(ctx, archive, "acme", hubclient.PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Approve(ctx, "acme", "app", "1.0.0", ""); err != nil {
		t.Fatal(err)
	}
	quarantined := hubtest.Archive(t, dir, "tool", "2.0.0", 2, th.key)
	if _, err := alice.Push(ctx, quarantined, "acme", hubclient.PushOptions{NoSubmit: true}); err != nil {
		t.Fatal(err)
	}

	type target struct{ path, what string }
	var targets []target
	for _, pkg := range []struct {
		repo, version, archive string
		sigs                   []ocispec.Descriptor
	}{{"acme/app", "1.0.0", archive, res.Package.Signatures}, {"acme/tool", "2.0.0", quarantined, nil}} {
		manifests, blobs, _ := archiveContent(t, pkg.archive)
		targets = append(targets, target{"/v2/" + pkg.repo + "/manifests/" + pkg.version, "version tag"})
		for i, d := range manifests {
			what := "child manifest"
			if i == 0 {
				what = "root"
			}
			targets = append(targets, target{"/v2/" + pkg.repo + "/manifests/" + d, what})
		}
		for _, d := range blobs {
			targets = append(targets, target{"/v2/" + pkg.repo + "/blobs/" + d, "blob"})
		}
		for _, s := range pkg.sigs {
			targets = append(targets, target{"/v2/" + pkg.repo + "/manifests/" + s.Digest.String(), "signature"})
		}
	}
	if len(targets) < 12 {
		t.Fatalf("only %d targets", len(targets))
	}
	roles := []struct {
		user string
		want int
	}{{"", http.StatusUnauthorized}, {"carol", http.StatusForbidden}, {"alice", http.StatusForbidden}, {"bob", http.StatusForbidden}, {"root", http.StatusForbidden}}
	for _, r := range roles {
		for _, tg := range targets {
			if got, body := rawDo(t, th, http.MethodDelete, tg.path, r.user, nil, ""); got != r.want {
				t.Errorf("DELETE %s (%s) as %q: %d %s, want %d", tg.path, tg.what, r.user, got, body, r.want)
			} else if r.user == "alice" && !strings.Contains(body, "skiff hub remove") {
				t.Errorf("DELETE %s as alice: %s, want a hint to skiff hub remove", tg.path, body)
			}
		}
	}

	// PUT: moving a version tag is refused to everyone; a new tag needs
	// write permission.
	_, _, image := archiveContent(t, archive)
	for _, r := range roles {
		if got, body := rawDo(t, th, http.MethodPut, "/v2/acme/app/manifests/1.0.0", r.user, image, ocispec.MediaTypeImageManifest); got != r.want {
			t.Errorf("PUT over the version tag as %q: %d %s, want %d", r.user, got, body, r.want)
		}
		want := map[string]int{"": http.StatusUnauthorized, "carol": http.StatusForbidden}[r.user]
		if want == 0 {
			want = http.StatusCreated
		}
		if got, body := rawDo(t, th, http.MethodPut, "/v2/acme/app/manifests/scratch-"+r.user, r.user, image, ocispec.MediaTypeImageManifest); got != want {
			t.Errorf("PUT a new tag as %q: %d %s, want %d", r.user, got, body, want)
		}
	}

	// Content no package holds can be deleted by writers, not readers.
	blob := []byte("an orphan blob")
	d := digest.FromBytes(blob)
	uploadBlob(t, th, "acme/app", "alice", blob)
	if got, _ := rawDo(t, th, http.MethodDelete, "/v2/acme/app/blobs/"+d.String(), "carol", nil, ""); got != http.StatusForbidden {
		t.Errorf("reader deleting an orphan blob: %d", got)
	}
	if got, body := rawDo(t, th, http.MethodDelete, "/v2/acme/app/blobs/"+d.String(), "alice", nil, ""); got != http.StatusAccepted {
		t.Errorf("writer deleting an orphan blob: %d %s", got, body)
	}

	// Every delete was audited, refused or not.
	entries, err := th.client(t, "root").Audit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	refused, made := 0, 0
	for _, e := range entries {
		if e.Action != hub.ActionRegistryDelete {
			continue
		}
		if strings.Contains(e.Details, `"refused"`) {
			refused++
		} else if e.Actor == "alice" && e.Target == "acme/app@"+d.String() {
			made++
		}
	}
	// Anonymous requests are refused before they can be attributed; the
	// others are recorded (the reader's orphan delete too).
	if want := 4*len(targets) + 1; refused != want || made != 1 {
		t.Errorf("audited %d refused and %d made deletes, want %d and 1", refused, made, want)
	}

	// The approved package still pulls, byte for byte.
	out := filepath.Join(dir, "pulled.skiff")
	if _, err := carol.Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{}); err != nil {
		t.Fatalf("pull after the deletes: %v", err)
	}
	want, _ := os.ReadFile(archive)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(want, got) {
		t.Fatal("the pulled archive differs")
	}
	// And the quarantined one still reviews.
	if p, err := alice.Submit(ctx, "acme", "tool", "2.0.0"); err != nil || p.Status != hub.StatusPending {
		t.Fatalf("submitting the quarantined package: %v %+v", err, p)
	}
}

// TestConcurrentPushesOfOneVersion: four pushes of two different
// archives as one version, at once: one archive wins, the pushes of the
// other are refused with a clear error, and the hub holds the winner,
// signed and pending, which then pulls byte for byte.
func TestConcurrentPushesOfOneVersion(t *testing.T) {
	for _, b := range hubtest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testConcurrentPushes(t, b.URL) })
	}
}

func testConcurrentPushes(t *testing.T, dbURL string) {
	th := newTestHub(t, hub.Options{DatabaseURL: hubtest.FreshSchema(t, dbURL)})
	ctx := th.ctx
	dir := t.TempDir()
	archives := []string{
		hubtest.Archive(t, filepath.Join(dir), "app", "1.0.0", 1, th.key),
		hubtest.Archive(t, mkdir(t, dir, "b"), "app", "1.0.0", 2, th.key),
	}
	roots := map[string]string{}
	for _, a := range archives {
		m, _, _ := archiveContent(t, a)
		roots[m[0]] = a
	}
	alice := th.client(t, "alice")
	type result struct {
		archive string
		res     *hubclient.PushResult
		err     error
	}
	results := make(chan result, 4)
	start := make(chan struct{})
	for i := range 4 {
		go func() {
			<-start
			res, err := alice.Push(ctx, archives[i%2], "acme", hubclient.PushOptions{})
			results <- result{archives[i%2], res, err}
		}()
	}
	close(start)
	won := map[string]int{}
	var failures []error
	for range 4 {
		r := <-results
		if r.err != nil {
			failures = append(failures, r.err)
			continue
		}
		if r.res.Package.Status != hub.StatusPending || roots[r.res.Package.Digest] != r.archive {
			t.Errorf("push of %s answered %s for %s (gates %+v)", r.archive, r.res.Package.Status, r.res.Package.Digest, r.res.Package.Gates)
		}
		won[r.archive]++
	}
	if len(won) != 1 {
		t.Fatalf("%d archives won the version (%v), failures %v", len(won), won, failures)
	}
	for _, err := range failures {
		if !strings.Contains(err.Error(), "immutable") {
			t.Errorf("a losing push failed with %v, want a clear refusal", err)
		}
	}
	var winner string
	for a := range won {
		winner = a
	}
	p := mustPackage(t, th, "acme", "app", "1.0.0")
	if p.Status != hub.StatusPending || roots[p.Digest] != winner || len(p.Signatures) != 1 {
		t.Fatalf("the hub holds %s %s with %d signatures; want the winner, pending and signed", p.Digest, p.Status, len(p.Signatures))
	}
	// A submission naming the losing root is told the version is taken.
	for d, a := range roots {
		want := http.StatusOK
		if a != winner {
			want = http.StatusConflict
		}
		if got, body := rawDo(t, th, http.MethodPost, "/api/v1/packages/acme/app/1.0.0/submit?digest="+d, "alice", nil, ""); got != want {
			t.Errorf("submitting %s: %d %s, want %d", d, got, body, want)
		}
	}
	if _, err := th.client(t, "bob").Approve(ctx, "acme", "app", "1.0.0", ""); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pulled.skiff")
	if _, err := th.client(t, "carol").Pull(ctx, "acme", "app", "1.0.0", out, hubclient.PullOptions{}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	want, _ := os.ReadFile(winner)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(want, got) {
		t.Fatal("the pulled archive is not the winner")
	}
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	d := filepath.Join(parent, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestApprovalOfDemotedAdminDoesNotCount: with two approvals required,
// an approval by an administrator who then loses admin on the owner
// does not count towards approving the package.
func TestApprovalOfDemotedAdminDoesNotCount(t *testing.T) {
	th := newTestHub(t, hub.Options{Approvals: 2})
	ctx := th.ctx
	st := th.hub.Store()
	for _, u := range []string{"eve", "frank"} {
		if err := st.AddUser(ctx, u, password, false); err != nil {
			t.Fatal(err)
		}
		if err := st.Grant(ctx, "acme", u, hub.LevelAdmin); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := th.client(t, "alice").Push(ctx, hubtest.Archive(t, t.TempDir(), "app", "1.0.0", 1, th.key), "acme", hubclient.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if p, err := th.client(t, "bob").Approve(ctx, "acme", "app", "1.0.0", ""); err != nil || p.Status != hub.StatusPending {
		t.Fatalf("first approval: %v %+v", err, p)
	}
	if err := th.client(t, "root").Grant(ctx, "acme", "bob", "read"); err != nil {
		t.Fatal(err)
	}
	if p, err := th.client(t, "eve").Approve(ctx, "acme", "app", "1.0.0", ""); err != nil || p.Status != hub.StatusPending {
		t.Fatalf("second approval, the first by an administrator demoted since: %v %s, want pending", err, p.Status)
	}
	if p, err := th.client(t, "frank").Approve(ctx, "acme", "app", "1.0.0", ""); err != nil || p.Status != hub.StatusApproved {
		t.Fatalf("third approval: %v %+v", err, p)
	}
}

// TestDiskHousekeeping: review archives a killed hub left in ROOT/tmp
// are removed at start and, once stale, by housekeeping; unfinished
// uploads are purged after the configured age; blobs uploaded but
// referenced by no manifest are bounded per owner, while pushes of
// whole packages do not accumulate against the bound.
func TestDiskHousekeeping(t *testing.T) {
	// At start (SQLite: the only hub on ROOT), ROOT/tmp is emptied.
	root := t.TempDir()
	left := filepath.Join(root, "tmp", "review-1", "x.skiff")
	mkdir(t, filepath.Dir(left), "")
	os.WriteFile(left, []byte("partial"), 0o600)
	h, err := hub.New(t.Context(), hub.Options{Root: root, AllowUnsigned: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(left)); !os.IsNotExist(err) {
		t.Errorf("a review directory left by a killed hub survived the start: %v", err)
	}
	if r, err := h.Maintain(t.Context()); err != nil || r.TempRemoved+r.UploadsPurged != 0 {
		t.Errorf("housekeeping of an empty hub: %+v %v", r, err)
	}
	h.Close()

	th := newTestHub(t, hub.Options{MaxUnreferenced: 10_000, UploadPurgeAge: time.Hour})
	ctx := th.ctx
	alice := th.client(t, "alice")
	for i := range 3 {
		a := hubtest.Archive(t, t.TempDir(), "app", "1.0."+string(rune('0'+i)), uint64(i), th.key)
		if _, err := alice.Push(ctx, a, "acme", hubclient.PushOptions{}); err != nil {
			t.Fatalf("push %d under the bound: %v", i, err)
		}
	}
	// Orphan blobs count until the bound; then uploads are refused.
	for i := range 3 {
		uploadBlob(t, th, "acme/app", "alice", bytes.Repeat([]byte{byte(i)}, 4000))
	}
	if got, body := rawDo(t, th, http.MethodPost, "/v2/acme/app/blobs/uploads/", "alice", nil, ""); got != http.StatusForbidden || !strings.Contains(body, "no pushed manifest references") {
		t.Fatalf("an upload beyond the bound: %d %s", got, body)
	}
	if got, _ := rawDo(t, th, http.MethodPost, "/v2/other/app/blobs/uploads/", "root", nil, ""); got != http.StatusAccepted {
		t.Fatalf("another owner's upload: %d", got)
	}

	// An unfinished upload, and a stale review directory.
	req, _ := http.NewRequest(http.MethodPost, "http://"+th.host+"/v2/other/app/blobs/uploads/", nil)
	req.SetBasicAuth("root", password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	stale := filepath.Join(th.root, "tmp", "review-2")
	mkdir(t, stale, "")
	old := time.Now().Add(-7 * time.Hour)
	os.Chtimes(stale, old, old)
	fresh := mkdir(t, filepath.Join(th.root, "tmp"), "review-3")
	if r, err := th.hub.Maintain(ctx); err != nil || r.UploadsPurged != 0 || r.TempRemoved != 1 {
		t.Fatalf("housekeeping now: %+v %v, want the stale review directory only", r, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatal("a fresh review directory was removed")
	}

	// After the purge age: unfinished uploads go, and the orphans no
	// longer count.
	th.clock.Add(time.Hour + time.Minute)
	r, err := th.hub.Maintain(ctx)
	if err != nil || r.UploadsPurged < 2 {
		t.Fatalf("housekeeping after the purge age: %+v %v, want the unfinished uploads purged", r, err)
	}
	if got, body := rawDo(t, th, http.MethodPost, "/v2/acme/app/blobs/uploads/", "alice", nil, ""); got != http.StatusAccepted {
		t.Fatalf("an upload after the purge age: %d %s", got, body)
	}
}
