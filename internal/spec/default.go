package spec

import (
	"path"
	"path/filepath"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

// Defaults applied by Default.
const (
	// DefaultPlatform is used when platforms is empty.
	DefaultPlatform = "linux/amd64"
	// DefaultStepTimeout is used for lifecycle steps without a timeout.
	DefaultStepTimeout = "5m"
)

// Default fills in unset fields. It is idempotent. Chart namespaces stay
// empty, meaning the install namespace.
func Default(p *v1alpha1.Package) {
	if len(p.Platforms) == 0 {
		p.Platforms = []string{DefaultPlatform}
	}
	for i := range p.Charts {
		c := &p.Charts[i]
		if c.Repo != "" && c.Chart == "" {
			c.Chart = c.Name
		}
	}
	for i := range p.Files {
		f := &p.Files[i]
		if f.Target == "" && f.Source != "" {
			f.Target = path.Base(filepath.ToSlash(f.Source))
		}
	}
	if l := p.Lifecycle; l != nil {
		for _, steps := range [][]v1alpha1.Step{l.PreInstall, l.PostInstall, l.PreUpgrade, l.PostUpgrade, l.PreDelete} {
			for i := range steps {
				if steps[i].Timeout == "" {
					steps[i].Timeout = DefaultStepTimeout
				}
			}
		}
	}
}
