package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
	"github.com/distribution/reference"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/endpoint"
)

// MaxDescription is the longest metadata.description, in characters.
const MaxDescription = 1024

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	platformRE   = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)
)

// Validate checks every rule of the spec and returns a *ValidationError
// listing all problems, or nil. When s.Dir is set, local paths must also
// exist under it. Validate expects Default to have been applied.
func Validate(s *Spec) error {
	v := &validator{s: s}
	v.run()
	if len(v.errs) == 0 {
		return nil
	}
	// Report in file order; problems without a position keep their order
	// at the end.
	sort.SliceStable(v.errs, func(i, j int) bool {
		a, b := v.errs[i], v.errs[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		return a.Line < b.Line || (a.Line == b.Line && a.Column < b.Column)
	})
	return &ValidationError{File: s.Path, Errors: v.errs}
}

type validator struct {
	s    *Spec
	errs []FieldError
}

// addf records a problem at field path p, located at the nearest position
// the decoder saw for p or one of its parents.
func (v *validator) addf(p, format string, args ...any) {
	fe := FieldError{Path: p, Message: fmt.Sprintf(format, args...)}
	for q := p; ; {
		if pos, ok := v.s.pos[q]; ok {
			fe.Line, fe.Column = pos.line, pos.column
			break
		}
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
	}
	v.errs = append(v.errs, fe)
}

func (v *validator) run() {
	p := &v.s.Package
	if p.APIVersion != v1alpha1.APIVersion {
		v.addf("apiVersion", "must be %s", v1alpha1.APIVersion)
	}
	if p.Kind != v1alpha1.Kind {
		v.addf("kind", "must be %s", v1alpha1.Kind)
	}
	v.metadata(&p.Metadata)
	v.platforms(p.Platforms)
	if p.KubeVersion != "" && !kubeVersion.MatchString(p.KubeVersion) {
		v.addf("kubeVersion", "kubeVersion %q is not a Kubernetes version: use MAJOR.MINOR or MAJOR.MINOR.PATCH, like 1.35", p.KubeVersion)
	}
	v.images(p.Images)
	v.imageSignatures(p.ImageSignatures)

	components := map[string]string{} // name -> path of first use
	manifests := map[string]bool{}
	component := func(p, name string) {
		if name == "" {
			return
		}
		if first, ok := components[name]; ok {
			v.addf(p+".name", "component name %q is already used by %s: names must be unique across charts and manifests", name, first)
			return
		}
		components[name] = p
	}
	releases := map[string]string{} // releaseName -> path of first use
	for i := range p.Charts {
		cp := fmt.Sprintf("charts[%d]", i)
		v.chart(cp, &p.Charts[i])
		component(cp, p.Charts[i].Name)
		if r := p.Charts[i].ReleaseName; r != "" {
			if first, ok := releases[r]; ok {
				v.addf(cp+".releaseName", "release name %q is already used by %s: each chart needs its own Helm release", r, first)
			}
			releases[r] = cp
		}
	}
	for i := range p.Manifests {
		mp := fmt.Sprintf("manifests[%d]", i)
		v.manifest(mp, &p.Manifests[i])
		component(mp, p.Manifests[i].Name)
		manifests[p.Manifests[i].Name] = true
	}
	v.files(p.Files)
	v.dependencies(p.Dependencies, p.Metadata.Name)
	if l := p.Lifecycle; l != nil {
		v.steps("lifecycle.preInstall", l.PreInstall, manifests)
		v.steps("lifecycle.postInstall", l.PostInstall, manifests)
		v.steps("lifecycle.preUpgrade", l.PreUpgrade, manifests)
		v.steps("lifecycle.postUpgrade", l.PostUpgrade, manifests)
		v.steps("lifecycle.preDelete", l.PreDelete, manifests)
	}
	if np := p.NetworkPolicy; np != nil {
		v.networkPolicy(np)
	}
}

// label checks that s is a DNS-1123 label; what names the value for the
// message.
func (v *validator) label(p, s, what string, required bool) {
	switch {
	case s == "":
		if required {
			v.addf(p, "%s is required", what)
		}
	case len(s) > 63:
		v.addf(p, "%s %q is %d characters long: shorten it to at most 63", what, s, len(s))
	case !dns1123Label.MatchString(s):
		v.addf(p, "%s %q is not a DNS-1123 label: use lowercase letters, digits and '-', starting and ending with a letter or digit (like %q)", what, s, suggestLabel(s))
	}
}

// ToLabel turns s into the nearest DNS-1123 label ("My App" becomes
// "my-app"); it returns "my-package" when s has no usable characters.
func ToLabel(s string) string { return suggestLabel(s) }

// suggestLabel turns s into the nearest DNS-1123 label, for messages and
// for Scaffold.
func suggestLabel(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 63 {
			break
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.Trim(out[:63], "-")
	}
	if out == "" {
		return "my-package"
	}
	return out
}

func (v *validator) metadata(m *v1alpha1.Metadata) {
	v.label("metadata.name", m.Name, "name", true)
	switch {
	case m.Version == "":
		v.addf("metadata.version", "version is required: set a semantic version like 1.0.0")
	default:
		if _, err := semver.StrictNewVersion(m.Version); err != nil {
			hint := ""
			if sv, err := semver.NewVersion(m.Version); err == nil {
				hint = fmt.Sprintf(" (write %q)", sv.String())
			}
			v.addf("metadata.version", "version %q is not a strict semantic version: use MAJOR.MINOR.PATCH like 1.2.3%s", m.Version, hint)
		}
	}
	if n := utf8.RuneCountInString(m.Description); n > MaxDescription {
		v.addf("metadata.description", "description is %d characters long: shorten it to at most %d", n, MaxDescription)
	}
	for i, mt := range m.Maintainers {
		mp := fmt.Sprintf("metadata.maintainers[%d]", i)
		if strings.TrimSpace(mt.Name) == "" {
			v.addf(mp+".name", "maintainer name is required")
		}
		if mt.Email != "" {
			if a, err := mail.ParseAddress(mt.Email); err != nil || a.Address != mt.Email {
				v.addf(mp+".email", "email %q is not an email address: write it as user@example.com", mt.Email)
			}
		}
	}
}

func (v *validator) platforms(ps []string) {
	seen := map[string]bool{}
	for i, pl := range ps {
		pp := fmt.Sprintf("platforms[%d]", i)
		switch {
		case !platformRE.MatchString(pl):
			v.addf(pp, "platform %q is not os/arch[/variant]: write it like linux/amd64 or linux/arm64/v8", pl)
		case seen[pl]:
			v.addf(pp, "platform %q is listed twice: remove one", pl)
		default:
			if msg := checkPlatform(pl); msg != "" {
				v.addf(pp, "%s", msg)
			}
		}
		seen[pl] = true
	}
}

func (v *validator) images(imgs []string) {
	seen := map[string]bool{}
	for i, img := range imgs {
		ip := fmt.Sprintf("images[%d]", i)
		named, err := reference.ParseNormalizedNamed(img)
		if err != nil {
			v.addf(ip, "image %q is not a valid reference (%v): write it like registry.example.com/team/app:1.2.3 or app@sha256:<digest>", img, err)
			continue
		}
		canon := named.String()
		if seen[canon] {
			v.addf(ip, "image %q is listed twice: remove one", img)
		}
		seen[canon] = true
	}
}

func (v *validator) imageSignatures(sigs []v1alpha1.ImageSignature) {
	seen := map[string]bool{}
	for i, s := range sigs {
		ip := fmt.Sprintf("imageSignatures[%d]", i)
		var key string
		switch {
		case (s.Image == "") == (s.Registry == ""):
			v.addf(ip, "set exactly one of image (a repository, like ghcr.io/acme/app) or registry (a host, like ghcr.io)")
		case s.Image != "":
			named, err := reference.ParseNormalizedNamed(s.Image)
			if err != nil || !reference.IsNameOnly(named) {
				v.addf(ip+".image", "image %q is not a repository without tag or digest: write it like ghcr.io/acme/app", s.Image)
				break
			}
			key = named.Name()
		default:
			if strings.ContainsAny(s.Registry, "/@ ") {
				v.addf(ip+".registry", "registry %q is not a host[:port]: write it like ghcr.io (use image for one repository)", s.Registry)
				break
			}
			key = s.Registry + "/"
		}
		if key != "" && seen[key] {
			v.addf(ip, "%s has a key already: list each repository or registry once", strings.TrimSuffix(key, "/"))
		}
		seen[key] = true
		v.localPath(ip+".publicKey", s.PublicKey, filePath)
	}
}

// pathKind says what a local path must name.
type pathKind int

const (
	anyPath pathKind = iota
	filePath
	dirPath
)

// localPath checks a path relative to skiff.yaml: relative, inside the
// spec's directory and, when the spec has a directory, existing.
func (v *validator) localPath(p, rel string, kind pathKind) bool {
	if rel == "" {
		v.addf(p, "path is empty: set it to a path relative to skiff.yaml")
		return false
	}
	if strings.ContainsRune(rel, 0) {
		v.addf(p, "path %q contains a NUL byte: remove it", rel)
		return false
	}
	slash := filepath.ToSlash(rel)
	if filepath.IsAbs(rel) || path.IsAbs(slash) || filepath.VolumeName(rel) != "" {
		v.addf(p, "path %q is absolute: make it relative to skiff.yaml (copy the file next to it if needed)", rel)
		return false
	}
	clean := path.Clean(slash)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		v.addf(p, "path %q leaves the directory of skiff.yaml: move the file inside that directory", rel)
		return false
	}
	if clean == "." && kind != dirPath {
		v.addf(p, "path %q names the directory of skiff.yaml itself: name a file or a subdirectory", rel)
		return false
	}
	if v.s.Dir == "" {
		return true
	}
	abs := Resolve(v.s, rel)
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		v.addf(p, "%s does not exist: create it or fix the path (relative to %s)", abs, v.s.Dir)
		return false
	case err != nil:
		v.addf(p, "cannot read %s: %v", abs, err)
		return false
	case kind == filePath && fi.IsDir():
		v.addf(p, "%s is a directory: name a file", abs)
		return false
	case kind == dirPath && !fi.IsDir():
		v.addf(p, "%s is not a directory: name the directory that holds kustomization.yaml", abs)
		return false
	}
	return true
}

// kubeVersion matches a Kubernetes version: 1.35, v1.35.4.
var kubeVersion = regexp.MustCompile(`^v?[0-9]+\.[0-9]+(\.[0-9]+)?$`)

func (v *validator) chart(p string, c *v1alpha1.Chart) {
	v.label(p+".name", c.Name, "chart name", true)
	v.label(p+".releaseName", c.ReleaseName, "release name", false)
	if len(c.ReleaseName) > 53 {
		v.addf(p+".releaseName", "release name %q is %d characters long: Helm allows at most 53", c.ReleaseName, len(c.ReleaseName))
	}
	v.label(p+".namespace", c.Namespace, "namespace", false)
	switch {
	case c.Path == "" && c.Repo == "":
		v.addf(p, "chart needs a source: set path (a local chart) or repo (a remote one)")
	case c.Path != "" && c.Repo != "":
		v.addf(p, "chart sets both path and repo: keep exactly one")
	case c.Path != "":
		v.localPath(p+".path", c.Path, anyPath)
		if c.Version != "" {
			v.addf(p+".version", "version applies only to repo charts: remove it (a local chart's version comes from its Chart.yaml)")
		}
		if c.Chart != "" {
			v.addf(p+".chart", "chart applies only to repo charts: remove it")
		}
	default:
		v.repo(p+".repo", c.Repo)
		if c.Version == "" {
			v.addf(p+".version", "version is required with repo: pin the chart version to carry, like 1.2.3")
		} else if _, err := semver.NewVersion(c.Version); err != nil {
			v.addf(p+".version", "chart version %q is not a version (%v): pin an exact version like 1.2.3, not a range", c.Version, err)
		}
		if strings.ContainsAny(c.Chart, "/ \t:") {
			v.addf(p+".chart", "chart %q must be a bare chart name: put the repository part in repo", c.Chart)
		}
	}
	for i, f := range c.ValuesFiles {
		v.localPath(fmt.Sprintf("%s.valuesFiles[%d]", p, i), f, filePath)
	}
	v.imageValues(p+".imageValues", c.ImageValues)
}

// valuePathRE is a dotted chart value path: keys of letters, digits, '_'
// and '-', as --set writes them without escapes.
var valuePathRE = regexp.MustCompile(valuePathPattern)

const valuePathPattern = `^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`

func (v *validator) imageValues(p string, iv map[string]string) {
	paths := make([]string, 0, len(iv))
	for k := range iv {
		paths = append(paths, k)
	}
	sort.Strings(paths)
	for i, k := range paths {
		kp := p + "." + k
		if !valuePathRE.MatchString(k) {
			v.addf(kp, "value path %q is not a dotted path of keys: write it like acmesolver.image", k)
		}
		if i > 0 && strings.HasPrefix(k, paths[i-1]+".") {
			v.addf(kp, "value path %q is inside %q, which is mapped too: keep one", k, paths[i-1])
		}
		if _, err := reference.ParseNormalizedNamed(iv[k]); err != nil {
			v.addf(kp, "image %q is not a valid reference (%v): write it like quay.io/jetstack/cert-manager-acmesolver:v1.21.1", iv[k], err)
		}
	}
}

func (v *validator) repo(p, repo string) {
	u, err := url.Parse(repo)
	if err != nil || u.Host == "" {
		v.addf(p, "repo %q is not a URL: use https://charts.example.com or oci://registry.example.com/charts", repo)
		return
	}
	if u.User != nil {
		v.addf(p, "repo %q holds credentials: remove them from the URL and log in to the repository instead", repo)
		return
	}
	switch u.Scheme {
	case "https":
	case "oci":
		ref := strings.TrimSuffix(u.Host+u.Path, "/")
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil || !reference.IsNameOnly(named) || u.RawQuery != "" || u.Fragment != "" {
			v.addf(p, "repo %q is not an OCI repository: use oci://registry.example.com/path, without the chart name, tag or digest", repo)
		}
	case "http":
		if !endpoint.IsLoopback(u.Host) {
			v.addf(p, "repo %q uses plain http: use https:// (http is allowed only for localhost and 127.0.0.1)", repo)
		}
	default:
		v.addf(p, "repo %q has scheme %q: use https:// for a Helm repository or oci:// for a registry", repo, u.Scheme)
	}
}

func (v *validator) manifest(p string, m *v1alpha1.Manifest) {
	v.label(p+".name", m.Name, "manifest name", true)
	v.label(p+".namespace", m.Namespace, "namespace", false)
	switch {
	case len(m.Files) == 0 && m.Kustomize == "":
		v.addf(p, "manifest needs a source: set files (YAML files or directories) or kustomize (a directory)")
	case len(m.Files) > 0 && m.Kustomize != "":
		v.addf(p, "manifest sets both files and kustomize: keep exactly one, or split it into two manifests")
	case m.Kustomize != "":
		if v.localPath(p+".kustomize", m.Kustomize, dirPath) && v.s.Dir != "" {
			dir := Resolve(v.s, m.Kustomize)
			found := false
			for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
				if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
					found = true
					break
				}
			}
			if !found {
				v.addf(p+".kustomize", "%s holds no kustomization.yaml: add one or point kustomize at the directory that has it", dir)
			}
		}
	default:
		for i, f := range m.Files {
			v.localPath(fmt.Sprintf("%s.files[%d]", p, i), f, anyPath)
		}
	}
}

func (v *validator) files(fs []v1alpha1.File) {
	targets := map[string]string{}
	for i, f := range fs {
		p := fmt.Sprintf("files[%d]", i)
		if f.Source == "" {
			v.addf(p+".source", "source is required: set a path relative to skiff.yaml")
		} else {
			v.localPath(p+".source", f.Source, anyPath)
		}
		t := filepath.ToSlash(f.Target)
		switch {
		case f.Source == "" && f.Target == "":
			// Reported above.
		case t == "" || path.Clean(t) == ".":
			v.addf(p+".target", "target is empty: name a path inside the package's files tree")
		case path.IsAbs(t) || filepath.IsAbs(f.Target):
			v.addf(p+".target", "target %q is absolute: make it relative to the package's files tree", f.Target)
		case hasDotDot(t):
			v.addf(p+".target", "target %q contains '..': name a path inside the package's files tree", f.Target)
		default:
			c := path.Clean(t)
			if first, ok := targets[c]; ok {
				v.addf(p+".target", "target %q is already used by %s: give each file its own target", f.Target, first)
			}
			targets[c] = p
		}
	}
}

func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

func (v *validator) dependencies(deps []v1alpha1.Dependency, self string) {
	seen := map[string]bool{}
	for i, d := range deps {
		p := fmt.Sprintf("dependencies[%d]", i)
		v.label(p+".name", d.Name, "dependency name", true)
		if d.Name != "" {
			if d.Name == self {
				v.addf(p+".name", "package %q depends on itself: remove this dependency", d.Name)
			} else if seen[d.Name] {
				v.addf(p+".name", "dependency %q is listed twice: merge the version ranges into one entry", d.Name)
			}
			seen[d.Name] = true
		}
		if d.Version == "" {
			v.addf(p+".version", "version is required: give a semver range like \">=1.2.0 <2.0.0\" or \"^1.2\"")
		} else if _, err := semver.NewConstraint(d.Version); err != nil {
			v.addf(p+".version", "version %q is not a semver range (%v): write it like \">=1.2.0 <2.0.0\" or \"^1.2\"", d.Version, err)
		}
	}
}

func (v *validator) steps(p string, steps []v1alpha1.Step, manifests map[string]bool) {
	for i, st := range steps {
		sp := fmt.Sprintf("%s[%d]", p, i)
		if strings.TrimSpace(st.Name) == "" {
			v.addf(sp+".name", "step name is required: say what the step does")
		}
		var set []string
		for _, f := range []struct {
			name string
			on   bool
		}{{"apply", st.Apply != ""}, {"wait", st.Wait != ""}, {"run", st.Run != nil}, {"job", st.Job != nil}} {
			if f.on {
				set = append(set, f.name)
			}
		}
		switch {
		case len(set) == 0:
			v.addf(sp, "step does nothing: set apply (a manifest name), wait (kind/name), run (a command on this machine) or job (a Job from a carried image)")
		case len(set) > 1:
			v.addf(sp, "step sets %s: a step does one thing, split it into %d steps", strings.Join(set, " and "), len(set))
		case st.Apply != "":
			if !manifests[st.Apply] {
				v.addf(sp+".apply", "apply names %q, which is not a manifest in this package%s", st.Apply, knownList("manifests", st.Apply, manifests))
			}
		case st.Wait != "":
			parts := strings.Split(st.Wait, "/")
			ok := len(parts) == 2 || len(parts) == 3
			for _, part := range parts {
				if strings.TrimSpace(part) == "" || strings.ContainsAny(part, " \t") {
					ok = false
				}
			}
			if !ok {
				v.addf(sp+".wait", "wait %q is not kind/name or namespace/kind/name: write it like deployment/api", st.Wait)
			}
		case st.Run != nil:
			v.runStep(sp+".run", st.Run, strings.HasSuffix(p, ".preDelete"))
		case st.Job != nil:
			v.jobStep(sp+".job", st.Job)
		}
		if st.Timeout != "" {
			if d, err := time.ParseDuration(st.Timeout); err != nil || d <= 0 {
				v.addf(sp+".timeout", "timeout %q is not a positive duration: write it like 90s, 5m or 1h", st.Timeout)
			}
		}
	}
}

// envName is a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// env checks a step's environment: portable names, none of the SKIFF_
// variables skiff sets itself.
func (v *validator) env(p string, env map[string]string) {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case !envName.MatchString(k):
			v.addf(p+"."+k, "environment variable name %q is not letters, digits and '_' (not starting with a digit): rename it", k)
		case strings.HasPrefix(strings.ToUpper(k), "SKIFF_"):
			v.addf(p+"."+k, "environment variable %s: names starting with SKIFF_ are set by skiff (SKIFF_DEPLOYMENT, SKIFF_NAMESPACE, ...): rename it", k)
		}
	}
}

// runStep checks a command step. preDelete commands run at uninstall,
// which has no archive and so no carried files.
func (v *validator) runStep(p string, r *v1alpha1.RunStep, preDelete bool) {
	cmd := strings.TrimSpace(r.Command)
	if cmd == "" {
		v.addf(p+".command", "command is required: name the program to run (./bin/seed.sh from the package's files, or a program in PATH such as kubectl)")
	}
	if r.Dir != "" {
		d := filepath.ToSlash(r.Dir)
		switch {
		case preDelete:
			v.addf(p+".dir", "dir is not available in preDelete: uninstall runs without the archive, so there are no carried files to work in")
		case path.IsAbs(d) || filepath.IsAbs(r.Dir) || hasDotDot(d):
			v.addf(p+".dir", "dir %q must be a relative path inside the package's files, without '..'", r.Dir)
		}
	}
	if cmd != "" && !r.Shell && strings.Contains(cmd, "/") && !path.IsAbs(cmd) {
		// a path into the carried files
		rel := path.Clean(path.Join(filepath.ToSlash(r.Dir), filepath.ToSlash(cmd)))
		switch {
		case preDelete:
			v.addf(p+".command", "command %q names a carried file, but preDelete runs at uninstall without the archive: use a program installed on the machine (an absolute path or a name in PATH), or a job step", r.Command)
		case hasDotDot(rel):
			v.addf(p+".command", "command %q leaves the package's files through '..': name a carried file", r.Command)
		case !v.carries(rel):
			v.addf(p+".command", "command %q is not among the package's files%s: carry it under files (with target %s)", r.Command, v.carriedList(), rel)
		}
	}
	if !r.Shell && strings.ContainsAny(cmd, " \t") && !strings.Contains(cmd, "/") {
		v.addf(p+".command", "command %q holds spaces: put the program in command and its arguments in args (or set shell: true for a shell script)", r.Command)
	}
	v.env(p+".env", r.Env)
}

// carries reports whether rel (slash-separated, clean) is a carried file
// or lies under a carried directory.
func (v *validator) carries(rel string) bool {
	for _, f := range v.s.Files {
		t := path.Clean(filepath.ToSlash(f.Target))
		if rel == t || strings.HasPrefix(rel, t+"/") {
			return true
		}
	}
	return false
}

func (v *validator) carriedList() string {
	if len(v.s.Files) == 0 {
		return " (the package carries no files)"
	}
	var ts []string
	for _, f := range v.s.Files {
		ts = append(ts, path.Clean(filepath.ToSlash(f.Target)))
	}
	return " (files: " + strings.Join(ts, ", ") + ")"
}

// jobStep checks an in-cluster Job step.
func (v *validator) jobStep(p string, j *v1alpha1.JobStep) {
	if strings.TrimSpace(j.Image) == "" {
		v.addf(p+".image", "image is required: name the image the Job runs (it is carried in the package)")
	} else if _, err := reference.ParseNormalizedNamed(j.Image); err != nil {
		v.addf(p+".image", "image %q is not a valid reference (%v): write it like registry.example.com/team/migrate:2.1.0", j.Image, err)
	}
	if j.Namespace != "" {
		v.label(p+".namespace", j.Namespace, "namespace", false)
	}
	if j.ServiceAccount != "" && !dns1123Subdomain.MatchString(j.ServiceAccount) {
		v.addf(p+".serviceAccount", "serviceAccount %q is not a valid name: lowercase letters, digits, '-' and '.'", j.ServiceAccount)
	}
	if j.Retries < 0 {
		v.addf(p+".retries", "retries %d is negative: give 0 (one attempt) or more", j.Retries)
	}
	v.env(p+".env", j.Env)
}

var dns1123Subdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func knownList(what, name string, names map[string]bool) string {
	if len(names) == 0 {
		return ": add it under " + what + " first"
	}
	l := make([]string, 0, len(names))
	for n := range names {
		l = append(l, n)
	}
	sort.Strings(l)
	if best := closest(name, l); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf(": use one of the %s (%s)", what, strings.Join(l, ", "))
}

func (v *validator) networkPolicy(np *v1alpha1.NetworkPolicy) {
	names := map[string]bool{}
	for i, a := range np.Allow {
		p := fmt.Sprintf("networkPolicy.allow[%d]", i)
		v.label(p+".name", a.Name, "rule name", true)
		if a.Name != "" {
			if names[a.Name] {
				v.addf(p+".name", "rule name %q is used twice: give each rule its own name", a.Name)
			}
			names[a.Name] = true
		}
		switch a.Direction {
		case "ingress", "egress":
		case "":
			v.addf(p+".direction", "direction is required: set ingress or egress")
		default:
			v.addf(p+".direction", "direction %q is neither ingress nor egress", a.Direction)
		}
		if a.CIDR != "" {
			if _, err := netip.ParsePrefix(a.CIDR); err != nil {
				hint := ""
				if ip := net.ParseIP(a.CIDR); ip != nil {
					bits := 32
					if ip.To4() == nil {
						bits = 128
					}
					hint = fmt.Sprintf(" (for one address write %s/%d)", a.CIDR, bits)
				}
				v.addf(p+".cidr", "cidr %q is not a CIDR block: write it like 10.0.0.0/8%s", a.CIDR, hint)
			}
			if a.Namespace != "" || len(a.Pods) > 0 {
				v.addf(p+".cidr", "cidr cannot be combined with namespace or pods: split it into two rules")
			}
		}
		if a.Namespace != "" {
			v.label(p+".namespace", a.Namespace, "namespace", false)
		}
		for j, port := range a.Ports {
			if port < 1 || port > 65535 {
				v.addf(fmt.Sprintf("%s.ports[%d]", p, j), "port %d is out of range: use 1 to 65535", port)
			}
		}
		switch a.Protocol {
		case "", "TCP", "UDP", "SCTP":
		default:
			v.addf(p+".protocol", "protocol %q is not TCP, UDP or SCTP", a.Protocol)
		}
	}
}
