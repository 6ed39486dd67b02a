package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/spec"
)

// ErrDependencyNotFound is returned when no candidate archive satisfies a
// dependency.
var ErrDependencyNotFound = errors.New("dependency not found")

// LockFile is written beside skiff.yaml by a build with dependencies.
const LockFile = "skiff.lock"

// Lock records how dependencies were resolved.
type Lock struct {
	Dependencies []LockedDependency `json:"dependencies"`
}

// LockedDependency is one resolved dependency.
type LockedDependency struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Resolved string `json:"resolved"`
	Digest   string `json:"digest"`
}

// DepSource finds archives of package name in a version range somewhere
// else than local files (a hub), fetching them to local files.
type DepSource func(ctx context.Context, name, versionRange string) ([]string, error)

// resolvedDep is a dependency archive chosen for bundling.
type resolvedDep struct {
	name, rng, version string
	archive            *bundle.Archive
}

// resolveDeps picks, for every dependency of s, the highest version among
// the candidate archives (files, or directories of *.skiff) that
// satisfies its range, and checks its signature against trust (nil
// waives the check). The caller closes the returned archives.
//
// Unless update is set, skiff.lock beside the spec is honoured: a
// dependency whose range is the one locked must resolve to the locked
// version with the locked root digest, so the same spec bundles the same
// dependencies until the lock is updated (update, or a changed range).
func resolveDeps(ctx context.Context, s *spec.Spec, candidates []string, source DepSource, open bundle.OpenOptions, update bool) ([]resolvedDep, error) {
	if len(s.Dependencies) == 0 {
		return nil, nil
	}
	locked := map[string]LockedDependency{}
	if !update {
		l, err := ReadLock(s.Dir)
		if err != nil {
			return nil, err
		}
		for _, d := range l.Dependencies {
			locked[d.Name] = d
		}
	}
	var files []string
	if source != nil {
		for _, dep := range s.Dependencies {
			found, err := source(ctx, dep.Name, dep.Version)
			if err != nil {
				return nil, fmt.Errorf("dependency %s %s: %w", dep.Name, dep.Version, err)
			}
			files = append(files, found...)
		}
	}
	for _, c := range candidates {
		st, err := os.Stat(c)
		if err != nil {
			return nil, fmt.Errorf("dependency archives: %w", err)
		}
		if !st.IsDir() {
			files = append(files, c)
			continue
		}
		found, _ := filepath.Glob(filepath.Join(c, "*.skiff"))
		files = append(files, found...)
	}
	type cand struct {
		path    string
		name    string
		version *semver.Version
		root    string
	}
	var cands []cand
	for _, f := range files {
		a, err := bundle.Open(f)
		if err != nil {
			return nil, fmt.Errorf("dependency archive %s: %w", f, err)
		}
		d, err := a.Description(ctx)
		root := a.Root().Digest.String()
		a.Close()
		if err != nil {
			return nil, fmt.Errorf("dependency archive %s: %w", f, err)
		}
		v, err := semver.NewVersion(d.Version)
		if err != nil {
			continue
		}
		cands = append(cands, cand{f, d.Name, v, root})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].version.GreaterThan(cands[j].version) })
	var out []resolvedDep
	closeAll := func() {
		for _, r := range out {
			r.archive.Close()
		}
	}
	for _, dep := range s.Dependencies {
		c, err := semver.NewConstraint(dep.Version)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dependency %s: version range %q: %w", dep.Name, dep.Version, err)
		}
		var pick *cand
		var seen []string
		lk, isLocked := locked[dep.Name]
		isLocked = isLocked && lk.Version == dep.Version // a changed range re-resolves
		for i := range cands {
			if cands[i].name != dep.Name {
				continue
			}
			seen = append(seen, cands[i].version.String())
			if isLocked {
				if cands[i].version.Original() == lk.Resolved && cands[i].root == lk.Digest {
					pick = &cands[i]
					break
				}
				continue
			}
			if c.Check(cands[i].version) {
				pick = &cands[i]
				break
			}
		}
		if pick == nil && isLocked {
			closeAll()
			return nil, fmt.Errorf("%w: %s pins %s %s (root %s), but no archive among %s is that one (versions found: %s): pass its archive with --deps, or re-resolve with --update-deps",
				ErrDependencyNotFound, LockFile, dep.Name, lk.Resolved, lk.Digest, strings.Join(candidates, ", "), orNone(seen))
		}
		if pick == nil {
			closeAll()
			have := "none"
			if len(seen) > 0 {
				have = strings.Join(seen, ", ")
			}
			return nil, fmt.Errorf("%w: %s %s among %d archives in %s (versions found: %s): build it, or pass its archive with --deps",
				ErrDependencyNotFound, dep.Name, dep.Version, len(files), strings.Join(candidates, ", "), have)
		}
		a, _, err := bundle.OpenVerified(ctx, pick.path, open)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dependency %s (%s): %w", dep.Name, pick.path, err)
		}
		out = append(out, resolvedDep{name: dep.Name, rng: dep.Version, version: pick.version.Original(), archive: a})
	}
	return out, nil
}

// bundleDeps copies each dependency's package graph into dst and returns
// the root descriptors to list in the package root.
func bundleDeps(ctx context.Context, dst oras.Target, deps []resolvedDep, d *bundle.Description) ([]ocispec.Descriptor, error) {
	var roots []ocispec.Descriptor
	for _, r := range deps {
		root := r.archive.Root()
		if err := oras.CopyGraph(ctx, r.archive, dst, root, oras.DefaultCopyGraphOptions); err != nil {
			return nil, fmt.Errorf("bundling dependency %s: %w", r.name, err)
		}
		desc := ocispec.Descriptor{
			MediaType: root.MediaType, ArtifactType: root.ArtifactType, Digest: root.Digest, Size: root.Size,
			Annotations: map[string]string{
				bundle.AnnotationRefName:    r.name + ":" + r.version,
				bundle.AnnotationDependency: r.name,
			},
		}
		roots = append(roots, desc)
		for i := range d.Dependencies {
			if d.Dependencies[i].Name == r.name {
				d.Dependencies[i].Resolved = r.version
			}
		}
	}
	return roots, nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// ReadLock reads skiff.lock in dir; a missing file gives an empty lock.
func ReadLock(dir string) (*Lock, error) {
	path := filepath.Join(dir, LockFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Lock{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var l Lock
	if err := yaml.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("reading %s: %w: fix it, or delete it and build with --with-deps again", path, err)
	}
	return &l, nil
}

// writeLock writes skiff.lock beside the spec, atomically.
func writeLock(s *spec.Spec, deps []resolvedDep) error {
	var l Lock
	for _, r := range deps {
		l.Dependencies = append(l.Dependencies, LockedDependency{Name: r.name, Version: r.rng, Resolved: r.version, Digest: r.archive.Root().Digest.String()})
	}
	b, err := yaml.Marshal(l)
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, LockFile)
	if err := atomicfile.WriteFile(path, append([]byte("# written by skiff build --with-deps\n"), b...), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
