// Package convert turns a KOSI package definition (package.kosi, or the
// older package.yaml) into a Skiff package spec.
//
// KOSI packages are scripts of plugin calls; Skiff packages are
// declarations. Convert maps what has a declarative meaning (metadata,
// bundled files, container images, helm installs, kubectl applies of
// bundled files, nested package installs) and lists everything else in
// its report, so that a person can finish the port.
package convert

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"github.com/distribution/reference"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/spec"
)

// ErrUnsupported means the input is not a KOSI package definition that
// Convert can read.
var ErrUnsupported = errors.New("unsupported KOSI package definition")

// maxInput bounds the input size.
const maxInput = 1 << 20

// Convert reads a KOSI package definition and returns the equivalent
// skiff.yaml, plus one report line for each thing that could not be
// mapped or was changed on the way. filename picks the format: a name
// ending in .kosi is read as the KOSI language, .yaml or .yml as the
// legacy package.yaml; any other name is guessed from the content.
func Convert(kosiFile []byte, filename string) (skiffYAML []byte, report []string, err error) {
	if len(kosiFile) > maxInput {
		return nil, nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrUnsupported, filename, maxInput)
	}
	var src *source
	switch ext := strings.ToLower(filepath.Ext(filename)); {
	case ext == ".kosi":
		src, err = parseKosi(string(kosiFile))
	case ext == ".yaml" || ext == ".yml":
		src, err = parseLegacy(kosiFile)
	default:
		src, err = parseKosi(string(kosiFile))
		if err != nil {
			if s, lerr := parseLegacy(kosiFile); lerr == nil {
				src, err = s, nil
			}
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading %s: %v", ErrUnsupported, filename, err)
	}
	c := &converter{src: src, files: map[string]string{}, used: map[string]bool{}, names: map[string]bool{}}
	c.run()
	out, err := spec.Marshal(&c.pkg)
	if err != nil {
		return nil, nil, err
	}
	// Report what the result still needs.
	if _, verr := spec.Parse(out, ""); verr != nil {
		var ve *spec.ValidationError
		if errors.As(verr, &ve) {
			for _, fe := range ve.Errors {
				c.reportf("needs a fix: %s: %s", fe.Path, fe.Message)
			}
		} else {
			c.reportf("needs a fix: %v", verr)
		}
	}
	header := fmt.Sprintf("# Converted from %s by skiff convert.\n", printable(filepath.Base(filename)))
	if len(c.report) > 0 {
		header += "# Conversion notes: review these; some KOSI steps have no Skiff equivalent.\n"
		for _, r := range c.report {
			header += "#   - " + printable(r) + "\n"
		}
	}
	return append([]byte(header), out...), c.report, nil
}

// printable makes s safe for a one-line YAML comment.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\ufeff' {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

type converter struct {
	src    *source
	pkg    v1alpha1.Package
	files  map[string]string // file id -> path
	used   map[string]bool   // file ids mapped to a chart or manifest
	names  map[string]bool   // component names taken
	report []string
}

func (c *converter) reportf(format string, args ...any) {
	c.report = append(c.report, fmt.Sprintf(format, args...))
}

func (c *converter) run() {
	c.pkg.APIVersion = v1alpha1.APIVersion
	c.pkg.Kind = v1alpha1.Kind
	c.metadata()
	for _, f := range c.src.files {
		c.files[f.key] = f.value
	}
	c.images()
	for _, name := range []string{"install", "update", "delete"} {
		c.section(name, c.src.sections[name])
	}
	for name := range c.src.sections {
		switch name {
		case "install", "update", "delete":
		default:
			c.reportf("section %s: not a KOSI section Skiff knows; its steps were not converted", name)
		}
	}
	// Bundled files not used by a chart or manifest are carried as files.
	for _, f := range c.src.files {
		if c.used[f.key] {
			continue
		}
		if p, ok := c.localPath(fmt.Sprintf("files.%s (line %d)", f.key, f.line), f.value); ok {
			c.pkg.Files = append(c.pkg.Files, v1alpha1.File{Source: p})
		}
	}
}

func (c *converter) metadata() {
	m := &c.pkg.Metadata
	for _, a := range c.src.meta {
		switch a.key {
		case "name":
			m.Name = spec.ToLabel(a.value)
			if m.Name != a.value {
				c.reportf("name %q is not a DNS-1123 label: renamed to %q", a.value, m.Name)
			}
		case "version":
			m.Version = c.version(a.value)
		case "description":
			m.Description = a.value
			if r := []rune(a.value); len(r) > spec.MaxDescription {
				m.Description = string(r[:spec.MaxDescription])
				c.reportf("description is longer than %d characters: cut short", spec.MaxDescription)
			}
		case "apiversion", "languageversion":
			// Replaced by apiVersion and kind.
		case "docs":
			if p, ok := c.localPath("docs", a.value); ok {
				c.pkg.Files = append(c.pkg.Files, v1alpha1.File{Source: p})
				c.reportf("docs %q is carried as a file; Skiff has no documentation field", a.value)
			}
		case "logo":
			c.reportf("logo %q dropped: Skiff packages have no logo", a.value)
		default:
			c.reportf("line %d: %s is not a KOSI field Skiff knows: dropped", a.line, a.key)
		}
	}
	if m.Name == "" {
		m.Name = "my-package"
		c.reportf("name is missing: set to %q", m.Name)
	}
	if m.Version == "" {
		m.Version = "0.1.0"
		c.reportf("version is missing: set to %q", m.Version)
	}
}

// version maps a KOSI version (often four-part, like 1.2.3.4) to a strict
// semantic version.
func (c *converter) version(v string) string {
	if _, err := semver.StrictNewVersion(v); err == nil {
		return v
	}
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) == 4 {
		s := strings.Join(parts[:3], ".") + "+" + parts[3]
		if _, err := semver.StrictNewVersion(s); err == nil {
			c.reportf("version %q has four parts: written as %q (the fourth part is build metadata, so raise the patch number for new builds)", v, s)
			return s
		}
	}
	if sv, err := semver.NewVersion(v); err == nil {
		c.reportf("version %q is not a strict semantic version: written as %q", v, sv.String())
		return sv.String()
	}
	c.reportf("version %q is not a semantic version: set to 0.1.0", v)
	return "0.1.0"
}

func (c *converter) images() {
	for _, ct := range c.src.containers {
		ref := ""
		switch len(ct.parts) {
		case 1:
			ref = ct.parts[0]
		case 2:
			ref = ct.parts[0] + ":" + ct.parts[1]
		case 3:
			reg, img, tag := strings.TrimSuffix(ct.parts[0], "/"), strings.Trim(ct.parts[1], "/"), ct.parts[2]
			if reg != "" {
				img = reg + "/" + img
			}
			sep := ":"
			if strings.HasPrefix(tag, "sha256:") {
				sep = "@"
			}
			ref = img
			if tag != "" {
				ref += sep + tag
			}
		default:
			c.reportf("containers.%s (line %d): expected [registry, image, tag], got %d values: dropped", ct.id, ct.line, len(ct.parts))
			continue
		}
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			c.reportf("containers.%s (line %d): %q is not an image reference (%v): dropped", ct.id, ct.line, ref, err)
			continue
		}
		c.pkg.Images = append(c.pkg.Images, reference.FamiliarString(named))
	}
}

// localPath checks that a KOSI path can be a Skiff local path.
func (c *converter) localPath(what, p string) (string, bool) {
	slash := filepath.ToSlash(p)
	clean := path.Clean(slash)
	switch {
	case p == "" || strings.ContainsRune(p, 0):
		c.reportf("%s: empty or invalid path: dropped", what)
		return "", false
	case path.IsAbs(slash):
		c.reportf("%s: %q is absolute: dropped; copy it next to skiff.yaml and list it under files", what, p)
		return "", false
	case clean == "." || clean == ".." || strings.HasPrefix(clean, "../"):
		c.reportf("%s: %q is outside the package directory: dropped", what, p)
		return "", false
	}
	return clean, true
}

// component returns a unique component name based on want.
func (c *converter) component(want string) string {
	base := spec.ToLabel(want)
	name := base
	for i := 2; c.names[name]; i++ {
		suffix := fmt.Sprintf("-%d", i)
		if len(base)+len(suffix) > 63 {
			base = strings.TrimRight(base[:63-len(suffix)], "-")
		}
		name = base + suffix
	}
	c.names[name] = true
	return name
}

// fileRef resolves a KOSI file reference: a file id, or a path listed
// under files.
func (c *converter) fileRef(v string) (id, p string, ok bool) {
	v = strings.TrimSpace(v)
	if p, ok := c.files[v]; ok {
		return v, p, true
	}
	for _, f := range c.src.files {
		if f.value == v {
			return f.key, f.value, true
		}
	}
	return "", "", false
}

// listValue splits KOSI's "[a,b]" list strings.
func listValue(v string) []string {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, "[") || !strings.HasSuffix(v, "]") {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	var out []string
	for _, s := range strings.Split(v[1:len(v)-1], ",") {
		if s = strings.Trim(strings.TrimSpace(s), `"'`); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c *converter) section(name string, sts []stmt) {
	for _, st := range sts {
		c.stmt(name, st)
	}
}

var packageRef = regexp.MustCompile(`^(?:[\w.-]+/)?([\w.-]+):([\w.+-]+)$`)

func (c *converter) stmt(section string, st stmt) {
	where := fmt.Sprintf("%s, line %d: %s", section, st.line, st.plugin)
	switch strings.ToLower(st.plugin) {
	case "helm":
		c.helm(section, where, st)
	case "kubectl":
		c.kubectl(section, where, st)
	case "kosi":
		c.kosi(section, where, st)
	case "print", "fprint":
		c.reportf("%s: dropped; Skiff reports progress itself", where)
	case "if":
		c.reportf("%s: conditional steps are not converted (condition %q); use chart values to switch features", where, st.arg("condition"))
		c.nested(section, st.body)
		c.nested(section, st.orElse)
	case "loop":
		c.reportf("%s: loops are not converted", where)
		c.nested(section, st.body)
	case "template":
		c.reportf("%s: Scriban templates are not supported; move the template into a Helm chart", where)
	case "cmd", "bash", "sh", "sudo", "pia", "packagemanager", "hostname", "firewall", "firewalld",
		"iptables", "service", "containerd", "containerruntime", "kubeadm", "chmod", "copy", "editfile":
		c.reportf("%s: host commands are not supported; Skiff installs only into Kubernetes (use a Job manifest, or run it outside Skiff)", where)
	default:
		c.reportf("%s: plugin has no Skiff equivalent: not converted", where)
	}
}

func (c *converter) nested(section string, sts []stmt) {
	for _, st := range sts {
		c.reportf("%s, line %d: %s inside a condition or loop: not converted", section, st.line, st.plugin)
	}
}

func (c *converter) helm(section, where string, st stmt) {
	cmd := strings.ToLower(st.arg("command", "operation"))
	if section != "install" || (cmd != "" && cmd != "install" && cmd != "upgrade") {
		c.reportf("%s: skiff upgrades and uninstalls charts itself: not converted", where)
		return
	}
	chartRef := st.arg("tgz", "chart", "package", "file")
	id, p, ok := c.fileRef(chartRef)
	if !ok {
		c.reportf("%s: chart %q is not a bundled file: not converted; add it under charts with path or repo", where, chartRef)
		return
	}
	rel, ok := c.localPath(where, p)
	if !ok {
		return
	}
	c.used[id] = true
	name := st.arg("deploymentName", "releaseName", "release", "name")
	if name == "" {
		name = strings.TrimSuffix(strings.TrimSuffix(id, ".tgz"), ".tar.gz")
	}
	ch := v1alpha1.Chart{Name: c.component(name), Path: rel}
	if ns := st.arg("namespace"); ns != "" {
		ch.Namespace = ns
	}
	for _, v := range listValue(st.arg("values", "valuesFiles")) {
		vid, vp, ok := c.fileRef(v)
		if !ok {
			c.reportf("%s: values file %q is not a bundled file: not converted", where, v)
			continue
		}
		if rel, ok := c.localPath(where, vp); ok {
			c.used[vid] = true
			ch.ValuesFiles = append(ch.ValuesFiles, rel)
		}
	}
	for _, a := range st.args {
		switch strings.ToLower(a.key) {
		case "command", "operation", "tgz", "chart", "package", "file", "deploymentname", "releasename", "release", "name", "namespace", "values", "valuesfiles":
		default:
			c.reportf("%s: argument %s=%q not converted", where, a.key, a.value)
		}
	}
	c.pkg.Charts = append(c.pkg.Charts, ch)
}

func (c *converter) kubectl(section, where string, st stmt) {
	cmd := strings.ToLower(st.arg("operation", "command"))
	if section != "install" || !strings.Contains(cmd, "apply") && !strings.Contains(cmd, "create") {
		c.reportf("%s: only kubectl apply of bundled files is converted", where)
		return
	}
	var files []string
	ns := st.arg("namespace")
	for _, a := range st.args {
		fields := strings.Fields(a.value)
		for i, f := range fields {
			if (f == "-n" || f == "--namespace") && i+1 < len(fields) {
				ns = fields[i+1]
			}
			if id, p, ok := c.fileRef(f); ok {
				if rel, ok := c.localPath(where, p); ok {
					c.used[id] = true
					files = append(files, rel)
				}
			}
		}
	}
	if len(files) == 0 {
		c.reportf("%s: applies no bundled file: not converted", where)
		return
	}
	c.pkg.Manifests = append(c.pkg.Manifests, v1alpha1.Manifest{
		Name:      c.component(strings.TrimSuffix(path.Base(files[0]), path.Ext(files[0]))),
		Namespace: ns,
		Files:     files,
	})
}

func (c *converter) kosi(section, where string, st stmt) {
	if section != "install" {
		c.reportf("%s: not converted", where)
		return
	}
	for _, a := range st.args {
		if m := packageRef.FindStringSubmatch(a.value); m != nil {
			c.pkg.Dependencies = append(c.pkg.Dependencies, v1alpha1.Dependency{Name: spec.ToLabel(m[1]), Version: m[2]})
			c.reportf("%s: nested install of %s became a dependency on %s %s; install it first", where, a.value, spec.ToLabel(m[1]), m[2])
			return
		}
	}
	c.reportf("%s: not converted", where)
}
