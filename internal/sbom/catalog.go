package sbom

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"path"
	"regexp"
	"runtime/debug"
	"strings"
)

// found is one package found in a file of an image.
type found struct {
	typ      string // deb, apk, golang, npm, pypi
	name     string
	version  string
	arch     string
	source   string // dpkg Source / apk origin, when it differs
	licenses []string
	main     bool // the main module of a Go binary
}

// Bounds on what is read of one file.
const (
	maxStatusSize   = 64 << 20 // dpkg status, apk installed
	maxManifestSize = 4 << 20  // package.json
	maxHeaderSize   = 1 << 20  // METADATA / PKG-INFO headers
	maxOSRelease    = 64 << 10
)

// kind is what a path holds for the catalogers.
type kind int

const (
	kindNone kind = iota
	kindDpkg
	kindApk
	kindNpm
	kindPython
	kindOSRelease
)

var npmPath = regexp.MustCompile(`(^|/)node_modules/(@[^/]+/)?[^/@.][^/]*/package\.json$`)

// classify decides from its cleaned path which cataloger reads a file.
func classify(p string) kind {
	switch {
	case p == "var/lib/dpkg/status":
		return kindDpkg
	case strings.HasPrefix(p, "var/lib/dpkg/status.d/"):
		base := path.Base(p)
		if strings.Contains(base, ".") { // NAME.md5sums, NAME.list
			return kindNone
		}
		return kindDpkg
	case p == "lib/apk/db/installed":
		return kindApk
	case p == "etc/os-release" || p == "usr/lib/os-release":
		return kindOSRelease
	case strings.HasSuffix(p, ".dist-info/METADATA") || strings.HasSuffix(p, ".egg-info/PKG-INFO"):
		return kindPython
	case strings.HasSuffix(p, "/package.json") && npmPath.MatchString(p):
		return kindNpm
	}
	return kindNone
}

// stanzas splits RFC 822-style control data (dpkg status, apk installed)
// into paragraphs of fields; continuation lines are appended to the
// previous field. fn returning false stops.
func stanzas(r io.Reader, fn func(map[string]string) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	cur := map[string]string{}
	last := ""
	flush := func() bool {
		if len(cur) == 0 {
			return true
		}
		ok := fn(cur)
		cur, last = map[string]string{}, ""
		return ok
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if !flush() {
				return nil
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" && len(cur[last]) < 1<<16 {
				cur[last] += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = k
		cur[k] = strings.TrimSpace(v)
	}
	flush()
	return sc.Err()
}

// catalogDpkg reads a dpkg status file (or one status.d entry).
func catalogDpkg(r io.Reader) ([]found, error) {
	var out []found
	err := stanzas(r, func(f map[string]string) bool {
		name, ver := f["Package"], f["Version"]
		if name == "" || ver == "" {
			return true
		}
		if st := f["Status"]; st != "" && !strings.HasSuffix(st, " installed") {
			return true
		}
		src, _, _ := strings.Cut(f["Source"], " ")
		if src == name {
			src = ""
		}
		out = append(out, found{typ: "deb", name: name, version: ver, arch: f["Architecture"], source: src})
		return true
	})
	return out, err
}

// catalogApk reads Alpine's lib/apk/db/installed.
func catalogApk(r io.Reader) ([]found, error) {
	var out []found
	err := stanzas(r, func(f map[string]string) bool {
		name, ver := f["P"], f["V"]
		if name == "" || ver == "" {
			return true
		}
		src := f["o"]
		if src == name {
			src = ""
		}
		p := found{typ: "apk", name: name, version: ver, arch: f["A"], source: src}
		if l := f["L"]; l != "" {
			p.licenses = []string{l}
		}
		out = append(out, p)
		return true
	})
	return out, err
}

// catalogNpm reads a node_modules/**/package.json.
func catalogNpm(data []byte) []found {
	var pj struct {
		Name    string          `json:"name"`
		Version string          `json:"version"`
		License json.RawMessage `json:"license"`
	}
	if json.Unmarshal(data, &pj) != nil || pj.Name == "" || pj.Version == "" {
		return nil
	}
	p := found{typ: "npm", name: pj.Name, version: pj.Version}
	var s string
	var o struct {
		Type string `json:"type"`
	}
	switch {
	case json.Unmarshal(pj.License, &s) == nil && s != "":
		p.licenses = []string{s}
	case json.Unmarshal(pj.License, &o) == nil && o.Type != "":
		p.licenses = []string{o.Type}
	}
	return []found{p}
}

// catalogPython reads the headers of a METADATA or PKG-INFO file.
func catalogPython(r io.Reader) []found {
	sc := bufio.NewScanner(io.LimitReader(r, maxHeaderSize))
	sc.Buffer(make([]byte, 16<<10), 256<<10)
	var p found
	p.typ = "pypi"
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "name":
			p.name = v
		case "version":
			p.version = v
		case "license":
			if v != "" && v != "UNKNOWN" && len(v) < 200 {
				p.licenses = []string{v}
			}
		}
	}
	if p.name == "" || p.version == "" {
		return nil
	}
	return []found{p}
}

// parseOSRelease reads KEY=value lines.
func parseOSRelease(data []byte) map[string]string {
	out := map[string]string{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		k, v, ok := strings.Cut(strings.TrimSpace(string(line)), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		out[k] = strings.Trim(v, `"'`)
	}
	return out
}

// goPackages turns a Go binary's build information into packages: the
// main module (unless it is a development build), its dependencies and
// the standard library.
func goPackages(bi *debug.BuildInfo) []found {
	var out []found
	if bi.Main.Path != "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		out = append(out, found{typ: "golang", name: bi.Main.Path, version: bi.Main.Version, main: true})
	}
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		if m.Path == "" || m.Version == "" || m.Version == "(devel)" {
			continue
		}
		out = append(out, found{typ: "golang", name: m.Path, version: m.Version})
	}
	if v, ok := strings.CutPrefix(bi.GoVersion, "go"); ok && v != "" {
		v, _, _ = strings.Cut(v, " ") // "go1.22.1 X:nocoverageredesign"
		out = append(out, found{typ: "golang", name: "stdlib", version: "v" + v})
	}
	return out
}
