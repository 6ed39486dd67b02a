package kube

import (
	"strings"
	"testing"
)

func TestParseObjects(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // ObjectRef strings
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{name: "only separators and comments", in: "---\n# nothing\n---\n\n---\n", want: nil},
		{
			name: "multi doc",
			in: `apiVersion: v1
kind: ConfigMap
metadata: {name: a, namespace: x}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
`,
			want: []string{"ConfigMap x/a", "Deployment.apps web"},
		},
		{
			name: "list flattened",
			in: `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: s}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: r, namespace: ns}
`,
			want: []string{"Service s", "Role.rbac.authorization.k8s.io ns/r"},
		},
		{name: "json", in: `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}`, want: []string{"Secret s"}},
		{name: "missing kind", in: "apiVersion: v1\nmetadata: {name: a}\n", wantErr: "document 1: object has no kind"},
		{name: "missing apiVersion", in: "---\nkind: Pod\nmetadata: {name: a}\n---\nkind: Pod\n", wantErr: "document 1: Pod has no apiVersion"},
		{name: "missing name in second doc", in: "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Pod\nmetadata: {generateName: a-}\n", wantErr: "document 2: Pod has no metadata.name"},
		{name: "scalar document", in: "hello\n", wantErr: "document 1: not a Kubernetes object"},
		{name: "bad yaml", in: "a: [\n", wantErr: "document 1"},
		{name: "bad list item", in: "apiVersion: v1\nkind: List\nitems: [1]\n", wantErr: "document 1, list item 1"},
		{name: "namespace not a string", in: "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: 3}\n", wantErr: "metadata.namespace is not a string"},
		{name: "bad apiVersion", in: "apiVersion: a/b/c\nkind: Pod\nmetadata: {name: a}\n", wantErr: "unexpected GroupVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := ParseObjects([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range objs {
				got = append(got, RefOf(o).String())
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseObjectsKeepsIntegers(t *testing.T) {
	objs, err := ParseObjects([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := objs[0].Object["spec"].(map[string]any)["replicas"].(int64); !ok || v != 3 {
		t.Errorf("replicas = %#v, want int64 3", objs[0].Object["spec"])
	}
}

func TestObjectRefString(t *testing.T) {
	tests := []struct {
		ref  ObjectRef
		want string
		kctl string
	}{
		{ObjectRef{Version: "v1", Kind: "Namespace", Name: "demo"}, "Namespace demo", "namespace/demo"},
		{ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "demo", Name: "web"}, "Deployment.apps demo/web", "deployment.apps/web"},
	}
	for _, tt := range tests {
		if got := tt.ref.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if got := tt.ref.kubectlName(); got != tt.kctl {
			t.Errorf("kubectlName() = %q, want %q", got, tt.kctl)
		}
	}
}

func FuzzParseObjects(f *testing.F) {
	for _, s := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n",
		"---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s}\n",
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"n"}}`,
		"kind: X\napiVersion: a/b\nmetadata:\n  name: &a x\n  labels: {k: *a}\n",
		"- 1\n- 2\n",
		"apiVersion: v1\nkind: List\nitems: {a: b}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := ParseObjects(data)
		if err != nil {
			return
		}
		for _, o := range objs {
			if err := checkObject(o); err != nil {
				t.Fatalf("ParseObjects returned an object that fails its own checks: %v", err)
			}
			_ = RefOf(o).String()
			_ = prepare(o, map[string]string{"k": "v"})
		}
	})
}
