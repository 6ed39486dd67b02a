// Package chart fetches, packages, renders and installs Helm charts. It is
// the only package of Skiff that imports Helm.
//
// Fetch turns a local chart directory, a .tgz, an https:// chart repository
// or an oci:// registry into a self-contained, deterministic chart archive;
// Render templates an archive offline so that its images can be discovered;
// Client installs, upgrades, rolls back and uninstalls releases with the
// Helm v4 SDK (server-side apply, kstatus waiting).
package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
)

// Archive is a packaged chart.
type Archive struct {
	Name       string
	Version    string
	AppVersion string
	// Data is the chart archive (.tgz).
	Data []byte
}

// tree is a loaded chart plus the dependencies vendored into it that are
// not already among its files (charts/).
type tree struct {
	ch    *chartv2.Chart
	added []*tree
}

type entry struct {
	name string
	data []byte
}

// files lists every file of t under prefix, vendored dependencies under
// charts/<name>/.
func (t *tree) files(prefix string, out []entry) []entry {
	for _, f := range t.ch.Raw {
		out = append(out, entry{name: prefix + f.Name, data: f.Data})
	}
	for _, a := range t.added {
		out = a.files(prefix+"charts/"+a.ch.Name()+"/", out)
	}
	return out
}

// epoch is the modification time of every archive entry.
var epoch = time.Unix(0, 0).UTC()

// pack writes t as a deterministic chart archive: entries sorted by name,
// fixed modes and times, and a gzip header without name or time. The same
// chart always gives the same bytes.
func pack(t *tree) (*Archive, error) {
	name := t.ch.Name()
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return nil, fmt.Errorf("package chart: invalid chart name %q", name)
	}
	entries := t.files(name+"/", nil)
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	entries = slices.CompactFunc(entries, func(a, b entry) bool { return a.name == b.name })

	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if p := path.Clean(e.name); p != e.name || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("package chart %s: invalid file name %q", name, e.name)
		}
		h := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     e.name,
			Mode:     0o644,
			Size:     int64(len(e.data)),
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("package chart %s: %w", name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("package chart %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("package chart %s: %w", name, err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("package chart %s: %w", name, err)
	}
	// Load the result back: it must be a valid, self-contained chart.
	return archiveOf(buf.Bytes())
}

// archiveOf loads data as a chart and describes it.
func archiveOf(data []byte) (*Archive, error) {
	ch, err := load(data)
	if err != nil {
		return nil, err
	}
	return &Archive{
		Name:       ch.Name(),
		Version:    ch.Metadata.Version,
		AppVersion: ch.Metadata.AppVersion,
		Data:       data,
	}, nil
}

// load loads a chart archive from memory.
func load(data []byte) (*chartv2.Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("load chart archive: %w", err)
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("load chart archive: %w", err)
	}
	return ch, nil
}
