package images

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// occurrence is one image reference found in a manifest: either a string
// scalar (a container's image) or a mapping shaped like
// {registry, repository, tag, digest}.
type occurrence struct {
	// where names the occurrence for error messages:
	// "spec.template.spec.containers[0].image".
	where string
	// scalar is set for a plain string reference.
	scalar *yaml.Node
	// object is set for a {repository, tag[, registry|digest]} mapping.
	object *yaml.Node
}

// raw returns the reference as written in the manifest.
func (o occurrence) raw() string {
	if o.scalar != nil {
		return o.scalar.Value
	}
	reg := mapScalar(o.object, "registry")
	repo := mapScalar(o.object, "repository")
	tag := mapScalar(o.object, "tag")
	dgst := mapScalar(o.object, "digest")
	s := repo
	if reg != "" {
		s = strings.TrimSuffix(reg, "/") + "/" + repo
	}
	if tag != "" {
		s += ":" + tag
	}
	if dgst != "" {
		s += "@" + dgst
	}
	return s
}

// object identifies the Kubernetes object an occurrence is in, for errors.
type object struct {
	index int    // document index, from 0
	item  int    // index in a List's items, or -1
	kind  string // kind, may be empty
	name  string // metadata.name, may be empty
}

func (o object) String() string {
	s := "document " + strconv.Itoa(o.index)
	if o.item >= 0 {
		s += " item " + strconv.Itoa(o.item)
	}
	id := o.kind
	if id == "" {
		id = "(no kind)"
	}
	if o.name != "" {
		id += "/" + o.name
	}
	return s + " (" + id + ")"
}

// visitFunc is called for every image occurrence in a document.
type visitFunc func(obj object, occ occurrence) error

// decode splits manifests into YAML document nodes. Empty documents are
// returned as nil so that document indexes match the input.
func decode(manifests []byte) (docs []*yaml.Node, err error) {
	defer func() {
		// The YAML parser is not known to panic, but manifests are
		// untrusted input: never let a parser bug crash the caller.
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("parse manifests: document %d: %v", len(docs), r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(manifests))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("parse manifests: document %d: %w", len(docs), err)
		}
		if n.Kind != yaml.DocumentNode || len(n.Content) == 0 || isNull(n.Content[0]) {
			docs = append(docs, nil)
			continue
		}
		docs = append(docs, &n)
	}
}

// walk calls fn for every image occurrence in the documents.
func walk(docs []*yaml.Node, fn visitFunc) error {
	for i, d := range docs {
		if d == nil {
			continue
		}
		w := walker{seen: map[*yaml.Node]bool{}, fn: fn}
		if err := w.object(d.Content[0], object{index: i, item: -1}); err != nil {
			return err
		}
	}
	return nil
}

type walker struct {
	// seen guards against walking a node twice through YAML aliases, which
	// would make hostile input expand exponentially.
	seen map[*yaml.Node]bool
	fn   visitFunc
}

// builtinGroups are the API groups of Kubernetes itself whose kinds are not
// scanned like custom resources. Any group ending in .k8s.io is built in
// as well.
var builtinGroups = map[string]bool{
	"": true, "apps": true, "batch": true, "extensions": true,
	"policy": true, "autoscaling": true,
}

// object walks one Kubernetes object.
func (w *walker) object(n *yaml.Node, obj object) error {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: not a Kubernetes object (a YAML mapping)", obj)
	}
	apiVersion := mapScalar(n, "apiVersion")
	obj.kind = mapScalar(n, "kind")
	obj.name = mapScalar(mapGet(n, "metadata"), "name")

	if items := mapGet(n, "items"); items != nil && strings.HasSuffix(obj.kind, "List") {
		items = resolve(items)
		if items.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: items is not a list", obj)
		}
		for j, it := range items.Content {
			if isNull(it) {
				continue
			}
			if err := w.object(it, object{index: obj.index, item: j}); err != nil {
				return err
			}
		}
		return nil
	}

	group := ""
	if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
		group = apiVersion[:i]
	}
	if !builtinGroups[group] && !strings.HasSuffix(group, ".k8s.io") {
		return w.generic(n, obj, "")
	}
	if !builtinGroups[group] {
		// Other built-in groups (rbac, networking, storage, ...) hold no
		// images; their free-form fields must not be mistaken for them.
		return nil
	}
	switch obj.kind {
	case "Pod":
		return w.podSpec(mapGet(n, "spec"), obj, "spec")
	case "PodTemplate":
		return w.podSpec(mapPath(n, "template", "spec"), obj, "template.spec")
	case "CronJob":
		return w.podSpec(mapPath(n, "spec", "jobTemplate", "spec", "template", "spec"), obj, "spec.jobTemplate.spec.template.spec")
	default:
		// Deployment, StatefulSet, DaemonSet, ReplicaSet,
		// ReplicationController, Job and any other kind with a pod template.
		return w.podSpec(mapPath(n, "spec", "template", "spec"), obj, "spec.template.spec")
	}
}

var containerLists = []string{"initContainers", "containers", "ephemeralContainers"}

// podSpec visits the images of a PodSpec's containers.
func (w *walker) podSpec(spec *yaml.Node, obj object, where string) error {
	if spec == nil {
		return nil
	}
	for _, list := range containerLists {
		cs := mapGet(spec, list)
		if cs == nil || isNull(cs) {
			continue
		}
		if cs.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: %s.%s is not a list", obj, where, list)
		}
		for i, c := range cs.Content {
			c = resolve(c)
			if c.Kind != yaml.MappingNode {
				continue
			}
			img := mapGet(c, "image")
			if img == nil || isNull(img) {
				continue
			}
			at := fmt.Sprintf("%s.%s[%d].image", where, list, i)
			if img.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: %s is not a string", obj, at)
			}
			if img.Value == "" {
				continue
			}
			if err := w.fn(obj, occurrence{where: at, scalar: img}); err != nil {
				return err
			}
		}
	}
	return nil
}

// generic visits every string field named image and every mapping shaped
// {repository, tag[, registry|digest]} in a custom resource.
func (w *walker) generic(n *yaml.Node, obj object, where string) error {
	n = resolve(n)
	if w.seen[n] {
		return nil
	}
	w.seen[n] = true
	switch n.Kind {
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := w.generic(c, obj, fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		if isImageObject(n) {
			return w.fn(obj, occurrence{where: where, object: n})
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
			if k.Kind != yaml.ScalarNode {
				continue
			}
			at := k.Value
			if where != "" {
				at = where + "." + k.Value
			}
			if k.Value == "image" && v.Kind == yaml.ScalarNode {
				if v.ShortTag() != "!!str" || v.Value == "" {
					continue
				}
				if err := w.fn(obj, occurrence{where: at, scalar: v}); err != nil {
					return err
				}
				continue
			}
			if err := w.generic(v, obj, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// isImageObject reports whether n is shaped {repository, tag} or
// {repository, digest}, optionally with registry.
func isImageObject(n *yaml.Node) bool {
	repo := mapGet(n, "repository")
	if repo == nil || repo.Kind != yaml.ScalarNode || repo.ShortTag() != "!!str" || repo.Value == "" {
		return false
	}
	for _, k := range []string{"tag", "digest"} {
		if v := mapGet(n, k); v != nil && v.Kind == yaml.ScalarNode && !isNull(v) {
			return true
		}
	}
	return false
}

// resolve follows an alias to its anchor.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == yaml.AliasNode || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// mapGet returns the value of key in mapping n, or nil.
func mapGet(n *yaml.Node, key string) *yaml.Node {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return resolve(n.Content[i+1])
		}
	}
	return nil
}

// mapPath follows keys from n.
func mapPath(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = mapGet(n, k)
		if n == nil {
			return nil
		}
	}
	return n
}

// mapScalar returns the string value of key in n, or "".
func mapScalar(n *yaml.Node, key string) string {
	v := mapGet(n, key)
	if v == nil || v.Kind != yaml.ScalarNode || isNull(v) {
		return ""
	}
	return v.Value
}
