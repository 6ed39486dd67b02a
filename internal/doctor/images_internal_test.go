package doctor

import (
	"net/http"
	"strings"
	"testing"

	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/memory"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/oci"
)

// TestCheckImageLostBlobs: an image whose manifest the registry holds but
// one of whose layers it lost is reported, not counted present.
func TestCheckImageLostBlobs(t *testing.T) {
	host := fixture.Registry(t)
	src := memory.New()
	root := fixture.BuildImage(t, src, fixture.ImageOptions{Layers: []int{1024, 2048}, Seed: 70})
	im := host + "/doctor/lost:1"
	if _, err := oci.Push(t.Context(), src, []oci.PushImage{{Descriptor: root, Target: im}}, oci.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	reg, err := oci.NewRegistry(host, oci.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	who := []string{"Deployment ns/app"}
	if r := checkImage(t.Context(), reg, host, im, who); r != nil {
		t.Fatalf("whole image: %+v, want it present", r)
	}
	succ, err := content.Successors(t.Context(), src, root)
	if err != nil {
		t.Fatal(err)
	}
	lost := succ[len(succ)-1]
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, "http://"+host+"/v2/doctor/lost/blobs/"+lost.Digest.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE blob: %s", resp.Status)
	}
	r := checkImage(t.Context(), reg, host, im, who)
	if r == nil || r.Severity != Fail || !strings.Contains(r.Message, "1 of its blobs are not") || !strings.Contains(r.Message, lost.Digest.String()) {
		t.Fatalf("image with a lost layer: %+v, want a failure naming %s", r, lost.Digest)
	}
}
