// Package support collects what is needed to debug a deployment into one
// tar.gz that can be carried out of the air gap: its release records
// (with secret values redacted), the events of its namespaces, the
// readiness of its objects and the recent logs of its pods.
package support

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/install"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// DefaultTailLines is the number of log lines kept per container when
// Options.TailLines is zero.
const DefaultTailLines = 500

// Options configure [Collect].
type Options struct {
	Cluster    install.Cluster
	Namespace  string
	Deployment string
	// Output is the path of the tar.gz to write; it is replaced
	// atomically.
	Output string
	// TailLines is the number of log lines kept per container; zero
	// means DefaultTailLines, negative means all (up to 10 MiB).
	TailLines int64
	// Now stamps the bundle; nil means time.Now.
	Now func() time.Time
}

// Result reports a written bundle.
type Result struct {
	Path string `json:"path"`
	// Files are the paths inside the bundle.
	Files []string `json:"files"`
	// Errors are the things that could not be collected (a pod without
	// logs, events that could not be listed); they are in the bundle
	// too, in summary.json.
	Errors []string `json:"errors,omitempty"`
}

// summary is summary.json, the bundle's table of contents.
type summary struct {
	Deployment string    `json:"deployment"`
	Namespace  string    `json:"namespace"`
	Collected  time.Time `json:"collected"`
	Namespaces []string  `json:"namespaces"`
	Pods       []string  `json:"pods"`
	Files      []string  `json:"files"`
	Errors     []string  `json:"errors,omitempty"`
}

// Collect gathers the support bundle of a deployment and writes it to
// Options.Output. Failures to collect one part (logs of a pod, events of a
// namespace) are recorded in the bundle and in Result.Errors; a
// deployment without records is an error.
func Collect(ctx context.Context, o Options) (*Result, error) {
	if o.Output == "" {
		return nil, errors.New("no output file: pass -o bundle.tar.gz")
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.TailLines == 0 {
		o.TailLines = DefaultTailLines
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	kc, err := kube.New(kube.Config{Kubeconfig: o.Cluster.Kubeconfig, Context: o.Cluster.Context})
	if err != nil {
		return nil, err
	}
	store := release.NewStore(release.NewSecrets(kc), release.StoreOptions{})
	hist, err := store.History(ctx, o.Namespace, o.Deployment)
	if err != nil {
		return nil, err
	}
	b := &bundle{files: map[string][]byte{}}
	sum := summary{Deployment: o.Deployment, Namespace: o.Namespace, Collected: o.Now().UTC()}

	nss := map[string]bool{o.Namespace: true}
	for _, r := range hist {
		red := Redact(r)
		b.json(fmt.Sprintf("records/revision-%d.json", r.Revision), red)
		for _, c := range r.Components {
			nss[c.Namespace] = true
			for _, ob := range c.Objects {
				if ob.Namespace != "" {
					nss[ob.Namespace] = true
				}
			}
		}
	}
	delete(nss, "")

	_, objs, err := install.Status(ctx, o.Cluster, o.Namespace, o.Deployment)
	if err != nil {
		b.fail("status: %v", err)
	} else {
		b.json("status.json", objs)
	}
	pods := map[string]*corev1.Pod{} // "ns/name"
	for _, st := range objs {
		ref, ok := parseObject(st.Object)
		if !ok {
			continue
		}
		if ref.Namespace != "" {
			nss[ref.Namespace] = true
		}
		if err := b.podsOf(ctx, kc, ref, pods); err != nil {
			b.fail("pods of %s: %v", st.Object, err)
		}
	}

	for ns := range nss {
		sum.Namespaces = append(sum.Namespaces, ns)
	}
	slices.Sort(sum.Namespaces)
	for _, ns := range sum.Namespaces {
		evs, err := kc.Events(ctx, ns)
		if err != nil {
			b.fail("events of namespace %s: %v", ns, err)
			continue
		}
		b.json("events/"+ns+".json", events(evs))
	}

	keys := make([]string, 0, len(pods))
	for k := range pods {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := pods[k]
		sum.Pods = append(sum.Pods, k)
		b.json("pods/"+k+".json", podStatus(p))
		for _, c := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
			logs, err := kc.PodLogs(ctx, p.Namespace, p.Name, c.Name, o.TailLines)
			if err != nil {
				b.fail("logs of %s container %s: %v", k, c.Name, err)
				continue
			}
			b.files["logs/"+k+"/"+c.Name+".log"] = logs
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	sum.Errors = b.errs
	for name := range b.files {
		sum.Files = append(sum.Files, name)
	}
	sum.Files = append(sum.Files, "summary.json")
	slices.Sort(sum.Files)
	b.json("summary.json", sum)
	if err := b.write(o.Output, sum.Collected); err != nil {
		return nil, err
	}
	return &Result{Path: o.Output, Files: sum.Files, Errors: b.errs}, nil
}

// bundle gathers the files of a support bundle in memory.
type bundle struct {
	files map[string][]byte
	errs  []string
}

func (b *bundle) fail(format string, args ...any) {
	b.errs = append(b.errs, fmt.Sprintf(format, args...))
}

func (b *bundle) json(name string, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		b.fail("encoding %s: %v", name, err)
		return
	}
	b.files[name] = append(data, '\n')
}

// podsOf adds the pods of a workload (or the pod itself) to pods.
func (b *bundle) podsOf(ctx context.Context, kc *kube.Client, ref kube.ObjectRef, pods map[string]*corev1.Pod) error {
	var selector string
	switch ref.Kind {
	case "Pod":
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		obj, err := kc.Get(ctx, ref)
		if err != nil {
			return err
		}
		m, ok, _ := unstructured.NestedMap(obj.Object, "spec", "selector")
		if !ok {
			return nil
		}
		var ls metav1.LabelSelector
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &ls); err != nil {
			return err
		}
		sel, err := metav1.LabelSelectorAsSelector(&ls)
		if err != nil {
			return err
		}
		selector = sel.String()
	default:
		return nil
	}
	var list []unstructured.Unstructured
	if ref.Kind == "Pod" {
		obj, err := kc.Get(ctx, ref)
		if err != nil {
			return err
		}
		list = []unstructured.Unstructured{*obj}
	} else {
		var err error
		if list, err = kc.List(ctx, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, ref.Namespace, selector); err != nil {
			return err
		}
	}
	for _, u := range list {
		var p corev1.Pod
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &p); err != nil {
			return err
		}
		pods[p.Namespace+"/"+p.Name] = &p
	}
	return nil
}

// versions of the workload kinds status reports by group.
var versions = map[string]string{"": "v1", "apps": "v1", "batch": "v1"}

// parseObject reads back kube.ObjectRef.String ("Deployment.apps ns/name").
func parseObject(s string) (kube.ObjectRef, bool) {
	kg, nn, ok := strings.Cut(s, " ")
	if !ok {
		return kube.ObjectRef{}, false
	}
	kind, group, _ := strings.Cut(kg, ".")
	v, ok := versions[group]
	if !ok {
		return kube.ObjectRef{}, false
	}
	ref := kube.ObjectRef{Group: group, Version: v, Kind: kind, Name: nn}
	if ns, name, ok := strings.Cut(nn, "/"); ok {
		ref.Namespace, ref.Name = ns, name
	}
	return ref, true
}

// event is the part of an Event worth reading.
type event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Object  string    `json:"object"`
	Message string    `json:"message"`
	Count   int32     `json:"count,omitempty"`
}

func events(evs []corev1.Event) []event {
	out := make([]event, 0, len(evs))
	for _, e := range evs {
		t := e.LastTimestamp.Time
		if t.IsZero() {
			t = cmp.Or(e.EventTime.Time, e.CreationTimestamp.Time)
		}
		out = append(out, event{Time: t.UTC(), Type: e.Type, Reason: e.Reason,
			Object: e.InvolvedObject.Kind + " " + e.InvolvedObject.Name, Message: e.Message, Count: e.Count})
	}
	return out
}

// podStatus is a pod without its spec (which may hold secret values in
// its environment): where it runs, its images and its status.
func podStatus(p *corev1.Pod) map[string]any {
	var images []string
	for _, c := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
		images = append(images, c.Name+"="+c.Image)
	}
	return map[string]any{
		"name": p.Name, "namespace": p.Namespace, "labels": p.Labels, "node": p.Spec.NodeName,
		"images": images, "status": p.Status,
	}
}

// write writes the files as a tar.gz to path atomically: a temporary file
// in the same directory, synced, then renamed.
func (b *bundle) write(path string, mtime time.Time) error {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(b.files))
	for n := range b.files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		data := b.files[n]
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(data)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("writing support bundle: %w", err)
	}
	return nil
}
