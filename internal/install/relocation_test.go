package install

import (
	"errors"
	"testing"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/images"
)

const testDigest = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestRelocationKeepsSourceHost(t *testing.T) {
	d := &bundle.Description{Images: []bundle.Image{
		{Ref: "docker.io/prometheus/node-exporter:v1.12.1", Digest: testDigest},
		{Ref: "quay.io/prometheus/node-exporter:v1.12.1", Digest: testDigest},
		{Ref: "docker.io/library/busybox:1.37", Digest: testDigest},
	}}
	m, err := Relocation(d, images.Destination{Host: "reg.local:5000", Prefix: "site"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"docker.io/prometheus/node-exporter:v1.12.1": "reg.local:5000/site/docker.io/prometheus/node-exporter@" + testDigest,
		"quay.io/prometheus/node-exporter:v1.12.1":   "reg.local:5000/site/quay.io/prometheus/node-exporter@" + testDigest,
		"docker.io/library/busybox:1.37":             "reg.local:5000/site/docker.io/library/busybox@" + testDigest,
	}
	for src, tgt := range want {
		if m[src] != tgt {
			t.Errorf("%s -> %s, want %s", src, m[src], tgt)
		}
	}

	_, err = Relocation(d, images.Destination{Host: "reg.local:5000", Flatten: true})
	if !errors.Is(err, ErrImageCollision) {
		t.Fatalf("flatten with two node-exporters: error = %v, want ErrImageCollision", err)
	}

	// Two tags of one source repository share a target repository.
	d.Images = []bundle.Image{
		{Ref: "quay.io/prometheus/node-exporter:v1.12.1", Digest: testDigest},
		{Ref: "quay.io/prometheus/node-exporter:v1.12.0", Digest: testDigest},
	}
	if _, err := Relocation(d, images.Destination{Host: "r.local", Flatten: true}); err != nil {
		t.Errorf("two tags of one repository: %v", err)
	}
}
