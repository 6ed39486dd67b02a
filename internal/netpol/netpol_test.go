package netpol_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/netpol"
)

func TestGenerate(t *testing.T) {
	spec := &v1alpha1.NetworkPolicy{Enabled: true, Allow: []v1alpha1.NetworkAllow{
		{Name: "web-in", Direction: "ingress", PodSelector: map[string]string{"app": "web"}, CIDR: "10.1.2.3/8", Ports: []int32{80, 443}},
		{Name: "db-out", Direction: "egress", Namespace: "db", Pods: map[string]string{"app": "postgres"}, Ports: []int32{5432}, Protocol: "TCP"},
		{Name: "udp-out", Direction: "egress", Protocol: "UDP"},
	}}
	y, err := netpol.Generate(spec, []string{"b", "a", "", "b"}, "demo")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kube.ParseObjects(y)
	if err != nil {
		t.Fatalf("generated YAML does not parse: %v\n%s", err, y)
	}
	var got []string
	for _, o := range objs {
		if o.GetKind() != "NetworkPolicy" || o.GetAPIVersion() != "networking.k8s.io/v1" {
			t.Errorf("object %s %s", o.GetAPIVersion(), o.GetKind())
		}
		got = append(got, o.GetNamespace()+"/"+o.GetName())
	}
	var want []string
	for _, ns := range []string{"a", "b"} {
		for _, n := range netpol.Names(spec, "demo") {
			want = append(want, ns+"/"+n)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("policies\n got %v\nwant %v", got, want)
	}
	byName := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if o.GetNamespace() == "a" {
			byName[o.GetName()] = o
		}
	}
	for _, tc := range []struct {
		policy string
		path   []string
		want   any
	}{
		{"skiff-demo-default-deny", []string{"spec", "policyTypes"}, []any{"Ingress", "Egress"}},
		{"skiff-demo-dns", []string{"spec", "policyTypes"}, []any{"Egress"}},
		{"skiff-demo-allow-web-in", []string{"spec", "podSelector", "matchLabels", "app"}, "web"},
		{"skiff-demo-allow-web-in", []string{"spec", "policyTypes"}, []any{"Ingress"}},
		{"skiff-demo-allow-db-out", []string{"spec", "policyTypes"}, []any{"Egress"}},
	} {
		got, _, _ := unstructured.NestedFieldNoCopy(byName[tc.policy].Object, tc.path...)
		if !equal(got, tc.want) {
			t.Errorf("%s %v = %v, want %v", tc.policy, tc.path, got, tc.want)
		}
	}
	web := byName["skiff-demo-allow-web-in"].Object
	from := web["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)
	if cidr := from["from"].([]any)[0].(map[string]any)["ipBlock"].(map[string]any)["cidr"]; cidr != "10.0.0.0/8" {
		t.Errorf("cidr %v, want the masked 10.0.0.0/8", cidr)
	}
	if n := len(from["ports"].([]any)); n != 2 {
		t.Errorf("web-in has %d ports, want 2", n)
	}
	db := byName["skiff-demo-allow-db-out"].Object["spec"].(map[string]any)["egress"].([]any)[0].(map[string]any)
	peer := db["to"].([]any)[0].(map[string]any)
	if ns := peer["namespaceSelector"].(map[string]any)["matchLabels"].(map[string]any)[netpol.NamespaceLabel]; ns != "db" {
		t.Errorf("db-out namespace peer %v", peer)
	}
	if app := peer["podSelector"].(map[string]any)["matchLabels"].(map[string]any)["app"]; app != "postgres" {
		t.Errorf("db-out pod peer %v", peer)
	}
	udp := byName["skiff-demo-allow-udp-out"].Object["spec"].(map[string]any)["egress"].([]any)[0].(map[string]any)
	if _, ok := udp["to"]; ok {
		t.Errorf("udp-out without a peer has a to: %v", udp)
	}
	if p := udp["ports"].([]any)[0].(map[string]any); p["protocol"] != "UDP" || p["port"] != nil {
		t.Errorf("udp-out ports %v, want every UDP port", p)
	}
}

func TestGenerateDisabled(t *testing.T) {
	for _, spec := range []*v1alpha1.NetworkPolicy{nil, {Enabled: false, Allow: []v1alpha1.NetworkAllow{{Name: "x"}}}} {
		y, err := netpol.Generate(spec, []string{"a"}, "demo")
		if err != nil || y != nil {
			t.Errorf("Generate(%v) = %q, %v; want nothing", spec, y, err)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		allow v1alpha1.NetworkAllow
		ns    string
		want  string
	}{
		{"direction", v1alpha1.NetworkAllow{Name: "x", Direction: "sideways"}, "a", "neither ingress nor egress"},
		{"cidr", v1alpha1.NetworkAllow{Name: "x", Direction: "egress", CIDR: "10.0.0.1"}, "a", "not a CIDR"},
		{"cidr and namespace", v1alpha1.NetworkAllow{Name: "x", Direction: "egress", CIDR: "10.0.0.0/8", Namespace: "b"}, "a", "cannot be combined"},
		{"port", v1alpha1.NetworkAllow{Name: "x", Direction: "egress", Ports: []int32{70000}}, "a", "out of range"},
		{"protocol", v1alpha1.NetworkAllow{Name: "x", Direction: "egress", Protocol: "ICMP"}, "a", "not TCP, UDP or SCTP"},
		{"name", v1alpha1.NetworkAllow{Name: "Bad_Name", Direction: "egress"}, "a", "rule name"},
		{"label", v1alpha1.NetworkAllow{Name: "x", Direction: "egress", Pods: map[string]string{"a b": "c"}}, "a", "label key"},
		{"namespace", v1alpha1.NetworkAllow{Name: "x", Direction: "egress"}, "Not_A_Namespace", "namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := netpol.Generate(&v1alpha1.NetworkPolicy{Enabled: true, Allow: []v1alpha1.NetworkAllow{tc.allow}}, []string{tc.ns}, "demo")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func equal(a, b any) bool {
	as, ok1 := a.([]any)
	bs, ok2 := b.([]any)
	if ok1 && ok2 {
		if len(as) != len(bs) {
			return false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false
			}
		}
		return true
	}
	return a == b
}
