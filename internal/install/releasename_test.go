package install

import (
	"errors"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/release"
)

func TestReleaseNames(t *testing.T) {
	long := strings.Repeat("a", 30)
	tests := []struct {
		name       string
		deployment string
		charts     []bundle.Chart
		prev       *release.Record
		want       map[string]string
		wantErr    string
	}{
		{name: "chart named like the deployment does not double", deployment: "cert-manager",
			charts: []bundle.Chart{{Name: "cert-manager"}},
			want:   map[string]string{"cert-manager": "cert-manager"}},
		{name: "others get a prefix", deployment: "shop",
			charts: []bundle.Chart{{Name: "web"}, {Name: "shop"}},
			want:   map[string]string{"web": "shop-web", "shop": "shop"}},
		{name: "spec release name", deployment: "kps",
			charts: []bundle.Chart{{Name: "kps", Release: "monitoring"}},
			want:   map[string]string{"kps": "monitoring"}},
		{name: "recorded name kept", deployment: "shop",
			charts: []bundle.Chart{{Name: "web"}},
			prev:   &release.Record{Components: []release.Component{{Name: "web", Kind: kindChart, HelmRelease: "old-web"}}},
			want:   map[string]string{"web": "old-web"}},
		{name: "rename refused", deployment: "shop",
			charts:  []bundle.Chart{{Name: "web", Release: "new-web"}},
			prev:    &release.Record{Components: []release.Component{{Name: "web", Kind: kindChart, HelmRelease: "old-web"}}},
			wantErr: "cannot be renamed"},
		{name: "collision refused", deployment: "shop",
			charts:  []bundle.Chart{{Name: "web"}, {Name: "api", Release: "shop-web"}},
			wantErr: "charts web and api would both be Helm release shop-web"},
		{name: "same name in two namespaces", deployment: "shop",
			charts: []bundle.Chart{{Name: "web", Release: "x"}, {Name: "api", Release: "x", Namespace: "other"}},
			want:   map[string]string{"web": "x", "api": "x"}},
		{name: "long names cut apart", deployment: long,
			charts: []bundle.Chart{{Name: long + "-one"}, {Name: long + "-two"}},
			want:   map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := releaseNames(&bundle.Description{Charts: tt.charts}, tt.deployment, "ns", tt.prev)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrReleaseName) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: release %q, want %q", k, got[k], v)
				}
			}
			for _, v := range got {
				if len(v) > maxReleaseName {
					t.Errorf("release %q is over %d characters", v, maxReleaseName)
				}
			}
			if len(got) != len(tt.charts) {
				t.Errorf("got %v", got)
			}
		})
	}
}
