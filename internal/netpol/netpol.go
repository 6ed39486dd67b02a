// Package netpol generates the NetworkPolicies of a package that asks for
// them (spec.networkPolicy.enabled): a default deny of all ingress and
// egress in every namespace the deployment uses, with traffic inside the
// namespace, DNS lookups and the package's declared flows allowed.
package netpol

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

// Component is the name of the manifests component install records the
// generated policies under.
const Component = "network-policies"

// NamespaceLabel is the label Kubernetes puts on every namespace with its
// name; namespace peers select on it.
const NamespaceLabel = "kubernetes.io/metadata.name"

// DNSNamespace and DNSPort are where the allowed DNS egress goes.
const (
	DNSNamespace = "kube-system"
	DNSPort      = 53
)

// Enabled reports whether spec asks for generated policies.
func Enabled(spec *v1alpha1.NetworkPolicy) bool { return spec != nil && spec.Enabled }

// Names returns the names of the policies Generate makes for deployment,
// in the order it makes them in each namespace.
func Names(spec *v1alpha1.NetworkPolicy, deployment string) []string {
	names := []string{prefix(deployment) + "default-deny", prefix(deployment) + "same-namespace", prefix(deployment) + "dns"}
	if spec != nil {
		for _, a := range spec.Allow {
			names = append(names, prefix(deployment)+"allow-"+a.Name)
		}
	}
	return names
}

func prefix(deployment string) string { return "skiff-" + deployment + "-" }

// Generate returns the NetworkPolicies for spec in each of namespaces as a
// multi-document YAML stream, ordered by namespace (duplicates and empty
// names are dropped). For every namespace it makes:
//
//   - skiff-DEPLOYMENT-default-deny: denies all ingress and egress of
//     every pod of the namespace;
//   - skiff-DEPLOYMENT-same-namespace: allows traffic between the pods of
//     the namespace;
//   - skiff-DEPLOYMENT-dns: allows egress to kube-system on port 53 (UDP
//     and TCP), so pods can resolve names;
//   - skiff-DEPLOYMENT-allow-NAME for every declared flow.
//
// A disabled or nil spec gives nil.
func Generate(spec *v1alpha1.NetworkPolicy, namespaces []string, deployment string) ([]byte, error) {
	if !Enabled(spec) {
		return nil, nil
	}
	if errs := validation.IsDNS1123Label(deployment); len(errs) > 0 {
		return nil, fmt.Errorf("deployment name %q: %s", deployment, errs[0])
	}
	rules := make([]rule, 0, len(spec.Allow))
	for i, a := range spec.Allow {
		r, err := parseAllow(a)
		if err != nil {
			return nil, fmt.Errorf("networkPolicy.allow[%d]: %w: fix the package spec and rebuild", i, err)
		}
		rules = append(rules, r)
	}
	nss := slices.Clone(namespaces)
	slices.Sort(nss)
	nss = slices.Compact(nss)
	var out bytes.Buffer
	for _, ns := range nss {
		if ns == "" {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("namespace %q: %s", ns, errs[0])
		}
		pols := []networkingv1.NetworkPolicy{
			defaultDeny(ns, deployment),
			sameNamespace(ns, deployment),
			dns(ns, deployment),
		}
		for _, r := range rules {
			pols = append(pols, r.policy(ns, deployment))
		}
		for _, p := range pols {
			b, err := yaml.Marshal(&p)
			if err != nil {
				return nil, fmt.Errorf("encoding NetworkPolicy %s/%s: %w", ns, p.Name, err)
			}
			out.WriteString("---\n")
			out.Write(b)
		}
	}
	return out.Bytes(), nil
}

func newPolicy(ns, name string, types ...networkingv1.PolicyType) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: types},
	}
}

func defaultDeny(ns, deployment string) networkingv1.NetworkPolicy {
	return newPolicy(ns, prefix(deployment)+"default-deny", networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)
}

func sameNamespace(ns, deployment string) networkingv1.NetworkPolicy {
	p := newPolicy(ns, prefix(deployment)+"same-namespace", networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)
	peer := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: peer}}
	p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: peer}}
	return p
}

func dns(ns, deployment string) networkingv1.NetworkPolicy {
	p := newPolicy(ns, prefix(deployment)+"dns", networkingv1.PolicyTypeEgress)
	port := intstr.FromInt32(DNSPort)
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{
		To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: namespaceSelector(DNSNamespace)}},
		Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &port}, {Protocol: &tcp, Port: &port}},
	}}
	return p
}

func namespaceSelector(ns string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{NamespaceLabel: ns}}
}

// rule is a checked allowance.
type rule struct {
	a     v1alpha1.NetworkAllow
	peer  *networkingv1.NetworkPolicyPeer // nil: any peer
	ports []networkingv1.NetworkPolicyPort
}

func parseAllow(a v1alpha1.NetworkAllow) (rule, error) {
	r := rule{a: a}
	if errs := validation.IsDNS1123Label(a.Name); len(errs) > 0 {
		return r, fmt.Errorf("rule name %q: %s", a.Name, errs[0])
	}
	if a.Direction != "ingress" && a.Direction != "egress" {
		return r, fmt.Errorf("rule %s: direction %q is neither ingress nor egress", a.Name, a.Direction)
	}
	switch {
	case a.CIDR != "":
		if a.Namespace != "" || len(a.Pods) > 0 {
			return r, fmt.Errorf("rule %s: cidr cannot be combined with namespace or pods", a.Name)
		}
		pfx, err := netip.ParsePrefix(a.CIDR)
		if err != nil {
			return r, fmt.Errorf("rule %s: cidr %q is not a CIDR block (write it like 10.0.0.0/8)", a.Name, a.CIDR)
		}
		r.peer = &networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: pfx.Masked().String()}}
	case a.Namespace != "" || len(a.Pods) > 0:
		r.peer = &networkingv1.NetworkPolicyPeer{}
		if a.Namespace != "" {
			if errs := validation.IsDNS1123Label(a.Namespace); len(errs) > 0 {
				return r, fmt.Errorf("rule %s: namespace %q: %s", a.Name, a.Namespace, errs[0])
			}
			r.peer.NamespaceSelector = namespaceSelector(a.Namespace)
		}
		if len(a.Pods) > 0 {
			if err := checkLabels(a.Pods); err != nil {
				return r, fmt.Errorf("rule %s: pods: %w", a.Name, err)
			}
			r.peer.PodSelector = &metav1.LabelSelector{MatchLabels: a.Pods}
		}
	}
	if err := checkLabels(a.PodSelector); err != nil {
		return r, fmt.Errorf("rule %s: podSelector: %w", a.Name, err)
	}
	var proto *corev1.Protocol
	switch a.Protocol {
	case "":
	case "TCP", "UDP", "SCTP":
		p := corev1.Protocol(a.Protocol)
		proto = &p
	default:
		return r, fmt.Errorf("rule %s: protocol %q is not TCP, UDP or SCTP", a.Name, a.Protocol)
	}
	for _, port := range a.Ports {
		if port < 1 || port > 65535 {
			return r, fmt.Errorf("rule %s: port %d is out of range 1-65535", a.Name, port)
		}
		p := intstr.FromInt32(port)
		r.ports = append(r.ports, networkingv1.NetworkPolicyPort{Protocol: proto, Port: &p})
	}
	if len(a.Ports) == 0 && proto != nil {
		// Every port of one protocol.
		r.ports = []networkingv1.NetworkPolicyPort{{Protocol: proto}}
	}
	return r, nil
}

func checkLabels(m map[string]string) error {
	for k, v := range m {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return fmt.Errorf("label key %q: %s", k, errs[0])
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return fmt.Errorf("label %s value %q: %s", k, v, errs[0])
		}
	}
	return nil
}

func (r rule) policy(ns, deployment string) networkingv1.NetworkPolicy {
	var p networkingv1.NetworkPolicy
	var peers []networkingv1.NetworkPolicyPeer
	if r.peer != nil {
		peers = []networkingv1.NetworkPolicyPeer{*r.peer}
	}
	name := prefix(deployment) + "allow-" + r.a.Name
	if r.a.Direction == "ingress" {
		p = newPolicy(ns, name, networkingv1.PolicyTypeIngress)
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: r.ports}}
	} else {
		p = newPolicy(ns, name, networkingv1.PolicyTypeEgress)
		p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: peers, Ports: r.ports}}
	}
	p.Spec.PodSelector = metav1.LabelSelector{MatchLabels: r.a.PodSelector}
	return p
}
