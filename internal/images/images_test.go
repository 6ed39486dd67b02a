package images

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const (
	dgstA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dgstB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "nginx", want: "docker.io/library/nginx:latest"},
		{in: "nginx:1.27", want: "docker.io/library/nginx:1.27"},
		{in: "docker.io/nginx", want: "docker.io/library/nginx:latest"},
		{in: "bitnami/redis:7", want: "docker.io/bitnami/redis:7"},
		{in: "quay.io/org/app:v1", want: "quay.io/org/app:v1"},
		{in: "localhost:5000/app", want: "localhost:5000/app:latest"},
		{in: "nginx@" + dgstA, want: "docker.io/library/nginx@" + dgstA},
		{in: "nginx:1.27@" + dgstA, want: "docker.io/library/nginx:1.27@" + dgstA},
		{in: "  nginx  ", want: "docker.io/library/nginx:latest"},
		{in: "", wantErr: true},
		{in: "Nginx", wantErr: true},
		{in: "nginx@sha256:short", wantErr: true},
		{in: "a b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Normalize(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Normalize(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTarget(t *testing.T) {
	dst := Destination{Host: "127.0.0.1:5000"}
	tests := []struct {
		name    string
		src     string
		dst     Destination
		dgst    digest.Digest
		want    string
		wantErr bool
	}{
		{name: "library", src: "nginx:1.27", dst: dst, dgst: dgstA, want: "127.0.0.1:5000/docker.io/library/nginx@" + dgstA},
		{name: "prefix", src: "quay.io/org/team/app:v1", dst: Destination{Host: "reg.local", Prefix: "/mirror/"}, dgst: dgstA, want: "reg.local/mirror/quay.io/org/team/app@" + dgstA},
		// The source host keeps two registries' images apart.
		{name: "docker hub", src: "docker.io/prometheus/node-exporter:v1.12.1", dst: Destination{Host: "reg.local", Prefix: "p"}, dgst: dgstA, want: "reg.local/p/docker.io/prometheus/node-exporter@" + dgstA},
		{name: "quay", src: "quay.io/prometheus/node-exporter:v1.12.1", dst: Destination{Host: "reg.local", Prefix: "p"}, dgst: dgstA, want: "reg.local/p/quay.io/prometheus/node-exporter@" + dgstA},
		{name: "source port", src: "localhost:5000/app:v1", dst: dst, dgst: dgstA, want: "127.0.0.1:5000/localhost_5000/app@" + dgstA},
		{name: "flatten", src: "quay.io/org/team/app:v1", dst: Destination{Host: "reg.local", Prefix: "p", Flatten: true}, dgst: dgstA, want: "reg.local/p/app@" + dgstA},
		{name: "digest from source", src: "nginx@" + dgstB, dst: dst, want: "127.0.0.1:5000/docker.io/library/nginx@" + dgstB},
		{name: "given digest wins", src: "nginx@" + dgstB, dst: dst, dgst: dgstA, want: "127.0.0.1:5000/docker.io/library/nginx@" + dgstA},
		{name: "no digest", src: "nginx", dst: dst, wantErr: true},
		{name: "bad digest", src: "nginx", dst: dst, dgst: "sha256:xyz", wantErr: true},
		{name: "no host", src: "nginx", dst: Destination{}, dgst: dgstA, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Target(tt.src, tt.dst, tt.dgst)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Target error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Target = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTargetTag(t *testing.T) {
	got, err := TargetTag("ghcr.io/a/b/c:v2@"+dgstA, Destination{Host: "r:5000", Prefix: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "r:5000/x/ghcr.io/a/b/c:v2"; got != want {
		t.Errorf("TargetTag = %q, want %q", got, want)
	}
	got, err = TargetTag("nginx", Destination{Host: "r:5000", Flatten: true})
	if err != nil || got != "r:5000/nginx:latest" {
		t.Errorf("TargetTag(nginx) = %q, %v", got, err)
	}
	if _, err := TargetTag("nginx@"+dgstA, Destination{Host: "r"}); !errors.Is(err, ErrNoTag) {
		t.Errorf("TargetTag(digest only) error = %v, want ErrNoTag", err)
	}
}

func TestDiscover(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    []string
		wantErr string
	}{
		{
			name: "pod all container kinds",
			yaml: `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers: [{name: i, image: busybox:1.36}]
  containers: [{name: c, image: nginx}]
  ephemeralContainers: [{name: e, image: "debug/tool:v1"}]
`,
			want: []string{"docker.io/debug/tool:v1", "docker.io/library/busybox:1.36", "docker.io/library/nginx:latest"},
		},
		{
			name: "workloads",
			yaml: `apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec: {template: {spec: {containers: [{name: a, image: deploy:1}]}}}
---
apiVersion: apps/v1
kind: StatefulSet
spec: {template: {spec: {containers: [{name: a, image: sts:1}], initContainers: [{name: b, image: sts-init:1}]}}}
---
apiVersion: apps/v1
kind: DaemonSet
spec: {template: {spec: {containers: [{name: a, image: ds:1}]}}}
---
apiVersion: apps/v1
kind: ReplicaSet
spec: {template: {spec: {containers: [{name: a, image: rs:1}]}}}
---
apiVersion: v1
kind: ReplicationController
spec: {template: {spec: {containers: [{name: a, image: rc:1}]}}}
---
apiVersion: batch/v1
kind: Job
spec: {template: {spec: {containers: [{name: a, image: job:1}]}}}
---
apiVersion: batch/v1
kind: CronJob
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: cron:1}]}}}}}
---
apiVersion: v1
kind: PodTemplate
template: {spec: {containers: [{name: a, image: podtemplate:1}]}}
---
apiVersion: apps/v2
kind: FutureWorkload
spec: {template: {spec: {containers: [{name: a, image: future:1}]}}}
`,
			want: []string{
				"docker.io/library/cron:1", "docker.io/library/deploy:1", "docker.io/library/ds:1",
				"docker.io/library/future:1", "docker.io/library/job:1", "docker.io/library/podtemplate:1",
				"docker.io/library/rc:1", "docker.io/library/rs:1", "docker.io/library/sts-init:1",
				"docker.io/library/sts:1",
			},
		},
		{
			name: "helm hooks and tests",
			yaml: `# Source: demo/templates/hook.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations: {"helm.sh/hook": pre-install}
spec: {template: {spec: {containers: [{name: m, image: "migrate:2"}]}}}
---
# Source: demo/templates/tests/test.yaml
apiVersion: v1
kind: Pod
metadata:
  name: test
  annotations: {"helm.sh/hook": test}
spec: {containers: [{name: t, image: "curl:8"}]}
`,
			want: []string{"docker.io/library/curl:8", "docker.io/library/migrate:2"},
		},
		{
			name: "custom resources",
			yaml: `apiVersion: monitoring.example.com/v1
kind: Prometheus
metadata: {name: prom}
spec:
  image: quay.io/prometheus/prometheus:v3.0.0
  sidecars:
    - image: {registry: ghcr.io, repository: org/sidecar, tag: "1.0"}
    - image: {repository: docker.io/org/plain, tag: "2.0"}
    - pinned: {repository: org/pinned, digest: ` + dgstA + `}
  notAnImage: {repository: foo}
  imagePullPolicy: Always
  count: {image: 3}
  template: {spec: {containers: [{name: c, image: "crcontainer:1"}]}}
`,
			want: []string{
				"docker.io/library/crcontainer:1", "docker.io/org/pinned@" + dgstA, "docker.io/org/plain:2.0",
				"ghcr.io/org/sidecar:1.0", "quay.io/prometheus/prometheus:v3.0.0",
			},
		},
		{
			name: "built-in non-workload kinds are not scanned",
			yaml: `apiVersion: v1
kind: ConfigMap
metadata: {name: cm}
data: {image: "not-an-image"}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: crd}
spec: {versions: [{name: v1, schema: {openAPIV3Schema: {properties: {image: {type: string}, repository: "x", tag: "y"}}}}]}
`,
			want: nil,
		},
		{
			name: "lists, empty docs, duplicates",
			yaml: `---
---
# only a comment
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    spec: {containers: [{name: a, image: nginx}]}
  - apiVersion: apps/v1
    kind: Deployment
    spec: {template: {spec: {containers: [{name: a, image: "docker.io/library/nginx:latest"}]}}}
---
`,
			want: []string{"docker.io/library/nginx:latest"},
		},
		{
			name: "anchors and aliases",
			yaml: `apiVersion: v1
kind: Pod
spec:
  containers:
    - &c {name: a, image: nginx:1}
    - *c
`,
			want: []string{"docker.io/library/nginx:1"},
		},
		{
			name:    "invalid container image",
			yaml:    "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {containers: [{name: a, image: 'Bad:Ref'}]}}}\n",
			wantErr: "document 1 (Deployment/web): spec.template.spec.containers[0].image",
		},
		{
			name:    "invalid yaml",
			yaml:    "apiVersion: v1\n---\nkind: [\n",
			wantErr: "document 1",
		},
		{
			name:    "not a mapping",
			yaml:    "- a\n- b\n",
			wantErr: "document 0",
		},
		{
			name:    "image not a string",
			yaml:    "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: [x]}]}\n",
			wantErr: "not a string",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Discover([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Discover error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Discover =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

const relocateInput = `# leading comment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    note: "keep me"
spec:
  replicas: 3
  template:
    spec:
      initContainers:
        - name: init
          image: busybox@` + dgstB + `
      containers:
        - name: web
          image: nginx:1.27 # the web server
          ports: [{containerPort: 80}]
---
---
apiVersion: example.com/v1
kind: App
metadata: {name: app}
spec:
  image: {registry: docker.io, repository: library/nginx, tag: "1.27", digest: ""}
  other: {repository: quay.io/org/agent, tag: v1}
  version: 1.10
`

func TestRelocate(t *testing.T) {
	m := Map{
		"nginx:1.27":                "127.0.0.1:5000/library/nginx@" + dgstA,
		"busybox@" + dgstB:          "127.0.0.1:5000/library/busybox@" + dgstB,
		"quay.io/org/agent:v1":      "127.0.0.1:5000/org/agent:v1",
		"docker.io/library/unused:": "",
	}
	delete(m, "docker.io/library/unused:")
	out, err := Relocate([]byte(relocateInput), m, RelocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"# leading comment",
		`note: "keep me"`,
		"replicas: 3",
		"image: 127.0.0.1:5000/library/nginx@" + dgstA + " # the web server",
		"image: 127.0.0.1:5000/library/busybox@" + dgstB,
		"registry: '127.0.0.1:5000'",
		"repository: library/nginx",
		`digest: "` + dgstA + `"`,
		`tag: "1.27"`,
		"repository: '127.0.0.1:5000/org/agent'",
		"version: 1.10",
		"containerPort: 80",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if n := strings.Count(s, "\n---\n"); n != 1 {
		t.Errorf("got %d separators, want 1 (empty document dropped):\n%s", n, s)
	}

	// Every image in the output is a relocated one.
	got, err := Discover(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"127.0.0.1:5000/library/busybox@" + dgstB,
		"127.0.0.1:5000/library/nginx:1.27@" + dgstA,
		"127.0.0.1:5000/library/nginx@" + dgstA,
		"127.0.0.1:5000/org/agent:v1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Discover(relocated) =\n%q\nwant\n%q", got, want)
	}

	// Relocating is stable: the identity map over the output changes nothing.
	id := Map{}
	for _, r := range got {
		id[r] = r
	}
	again, err := Relocate(out, id, RelocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != s {
		t.Errorf("second relocation changed output:\n%s\n---- vs ----\n%s", again, s)
	}
}

func TestRelocateUnknown(t *testing.T) {
	_, err := Relocate([]byte(relocateInput), Map{"nginx:1.27": "r:5000/x@" + dgstA}, RelocateOptions{})
	if !errors.Is(err, ErrUnknownImage) {
		t.Fatalf("error = %v, want ErrUnknownImage", err)
	}
	var ue *UnknownImageError
	if !errors.As(err, &ue) {
		t.Fatalf("error %T is not *UnknownImageError", err)
	}
	want := []string{"docker.io/library/busybox@" + dgstB, "quay.io/org/agent:v1"}
	if !slices.Equal(ue.Refs, want) {
		t.Errorf("Refs = %q, want %q", ue.Refs, want)
	}
	if !strings.Contains(err.Error(), "add them to images: in skiff.yaml and rebuild") {
		t.Errorf("message lacks the fix: %v", err)
	}

	out, err := Relocate([]byte(relocateInput), Map{"nginx:1.27": "r:5000/x@" + dgstA}, RelocateOptions{AllowUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "image: busybox@"+dgstB) {
		t.Errorf("unknown image was changed:\n%s", out)
	}
}

func TestRelocateDigestFallback(t *testing.T) {
	in := "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: 'nginx:1.27@" + dgstA + "'}]}\n"
	out, err := Relocate([]byte(in), Map{"nginx@" + dgstA: "r:5000/library/nginx@" + dgstA}, RelocateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "r:5000/library/nginx@"+dgstA) {
		t.Errorf("not relocated:\n%s", out)
	}
}

func TestRelocateBadMapKey(t *testing.T) {
	if _, err := Relocate(nil, Map{"Bad Key": "x"}, RelocateOptions{}); err == nil {
		t.Fatal("want error for an invalid map key")
	}
}

var fuzzSeeds = []string{
	relocateInput,
	"",
	"---\n---\n",
	"apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod, spec: {containers: [{image: nginx}]}}]\n",
	"apiVersion: batch/v1\nkind: CronJob\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{image: a}]}}}}}\n",
	"apiVersion: x.io/v1\nkind: X\nspec: &a {image: nginx, b: *a}\n",
	"a: &a [*a, *a]\n",
	"apiVersion: x.io/v1\nkind: X\nspec: {image: {repository: r, tag: 1}}\n",
	"kind: [\n",
}

func FuzzDiscover(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := Discover(data)
		if err != nil {
			return
		}
		for _, r := range refs {
			if n, err := Normalize(r); err != nil || n != r {
				t.Fatalf("Discover returned %q, which does not normalize to itself (%q, %v)", r, n, err)
			}
		}
	})
}

func FuzzRelocate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := Discover(data)
		if err != nil {
			return
		}
		m := Map{}
		for _, r := range refs {
			target, err := Target(r, Destination{Host: "127.0.0.1:5000", Prefix: "p"}, dgstA)
			if err != nil {
				t.Fatalf("Target(%q): %v", r, err)
			}
			m[r] = target
		}
		out, err := Relocate(data, m, RelocateOptions{})
		if err != nil {
			t.Fatalf("Relocate after successful Discover: %v", err)
		}
		got, err := Discover(out)
		if err != nil {
			t.Fatalf("Discover(relocated): %v\n%s", err, out)
		}
		for _, r := range got {
			if !strings.HasPrefix(r, "127.0.0.1:5000/p/") {
				t.Fatalf("image %q was not relocated:\n%s", r, out)
			}
		}
	})
}
