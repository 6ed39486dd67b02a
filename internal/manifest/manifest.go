// Package manifest collects a package's plain Kubernetes manifests (files,
// directories of YAML, or a kustomization) into one YAML stream.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// ErrNoManifests is returned when the named files hold no YAML documents.
var ErrNoManifests = errors.New("no manifests found")

// Collect reads YAML files and directories (recursively; *.yaml, *.yml and
// *.json, in lexical order) and joins their documents into one stream
// separated by "---" lines.
func Collect(paths []string) ([]byte, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s is a symbolic link: copy the file into the package directory instead", path)
			}
			if !d.IsDir() && isManifest(path) {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reading manifests in %s: %w", p, err)
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	var out bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading manifests: %w", err)
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		if out.Len() > 0 {
			out.WriteString("\n---\n")
		}
		out.Write(b)
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("%w in %s: add YAML files (*.yaml, *.yml, *.json)", ErrNoManifests, strings.Join(paths, ", "))
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Kustomize builds the kustomization in dir, offline (remote bases are
// refused by kustomize's load restrictions and by the missing network).
func Kustomize(dir string) ([]byte, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	b, err := res.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: kustomization %s produced nothing", ErrNoManifests, dir)
	}
	return b, nil
}

func isManifest(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}
