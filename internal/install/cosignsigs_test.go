package install_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/cosign"
	"github.com/skiffhq/skiff/internal/cosign/cosigntest"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/install"
)

// TestLoadCarriesCosignSignatures: build carries an image's cosign
// signature tag, and load pushes it beside the relocated image, where it
// still verifies with the key; nothing is fetched from the source then.
func TestLoadCarriesCosignSignatures(t *testing.T) {
	ctx := context.Background()
	sp := loadSigned(t)
	d, pub, repoRef := sp.digest, sp.pub, sp.repoRef
	repo, err := remote.NewRepository(repoRef)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	k, err := cosign.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := cosign.Verify(ctx, repo, d, k); err != nil {
		t.Fatalf("the relocated image's signature: %v", err)
	}
}

// TestLoadCarriesReferrers: build carries the OCI referrers of each image
// and of each platform manifest it keeps (and referrers of those), and
// cosign's tag manifests of the index and of the kept platform manifests;
// load pushes them beside the relocated image, where the referrers API
// (the embedded registry) or the referrers tag (Debian's docker-registry
// 2.8, which has no such API) lists them. An index filtered to fewer
// platforms loses only its own referrers, which build reports.
func TestLoadCarriesReferrers(t *testing.T) {
	for _, reg := range []struct {
		name string
		host func(*testing.T) string
		// tagged: the registry has no referrers API, so the referrers
		// tag sha256-HEX lists them.
		tagged bool
	}{
		// The embedded registry's distribution has no referrers API
		// either; the fixture adds one in front of it.
		{"embedded", func(t *testing.T) string { return fixture.Registry(t) }, true},
		{"referrers API", func(t *testing.T) string { return fixture.ReferrersRegistry(t) }, false},
		{"docker-registry", func(t *testing.T) string { return fixture.DockerRegistry(t) }, true},
	} {
		t.Run(reg.name, func(t *testing.T) { testReferrers(t, reg.host(t), reg.tagged) })
	}
}

func testReferrers(t *testing.T, host string, tagged bool) {
	ctx := context.Background()
	// The docker-registry outlives the test: fresh repositories.
	prefix := strings.ToLower("refs" + rand.Text()[:10])
	src := host + "/" + prefix + "/app"
	root := fixture.PushImage(t, src+":1", fixture.ImageOptions{Layers: []int{128}, Platforms: []string{"linux/amd64", "linux/arm64"}, Seed: 11})
	srcRepo := plainRepo(t, src)
	_, raw, err := oras.FetchBytes(ctx, srcRepo, root.Digest.String(), oras.DefaultFetchBytesOptions)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	amd64, arm64 := idx.Manifests[0], idx.Manifests[1]
	key, pub := cosigntest.NewECDSAKey(t)
	onIndex := cosigntest.Attach(t, src, root, "application/vnd.example.sbom+json", []byte(`{"sbom":"index"}`))
	onAMD64 := cosigntest.Attach(t, src, amd64, "application/vnd.example.provenance+json", []byte(`{"provenance":"amd64"}`))
	onAttestation := cosigntest.Attach(t, src, onAMD64, "application/vnd.example.signature", []byte("signature of the provenance"))
	onARM64 := cosigntest.Attach(t, src, arm64, "application/vnd.example.provenance+json", []byte(`{"provenance":"arm64"}`))
	cosigntest.Sign(t, src, amd64.Digest, amd64.Digest, key)
	cosigntest.SignKeyless(t, src, root.Digest)

	for _, tc := range []struct {
		name      string
		platforms string
		// want maps each subject (in the loaded repository) to the
		// referrers it must have there; gone are referrers that must not.
		want     map[digest.Digest][]digest.Digest
		gone     []digest.Digest
		warnings []string
		// cosign and referrers count what the archive carries.
		cosign, referrers int
	}{
		{"whole index", "[linux/amd64, linux/arm64]", map[digest.Digest][]digest.Digest{
			root.Digest: {onIndex.Digest}, amd64.Digest: {onAMD64.Digest}, onAMD64.Digest: {onAttestation.Digest}, arm64.Digest: {onARM64.Digest},
		}, nil, []string{"keyless"}, 2, 4},
		{"filtered index", "[linux/amd64]", map[digest.Digest][]digest.Digest{
			amd64.Digest: {onAMD64.Digest}, onAMD64.Digest: {onAttestation.Digest},
		}, []digest.Digest{onIndex.Digest, onARM64.Digest}, []string{"keyless", "1 OCI referrer of its multi-arch index not carried"}, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "skiff.yaml"), []byte("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: refs, version: 1.0.0}\nplatforms: "+tc.platforms+"\nimages: ["+src+":1]\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "refs.skiff")
			res, err := build.Build(ctx, build.Options{Spec: dir, Output: out, NoSBOM: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("build warnings: %q", res.Warnings)
			all := strings.Join(res.Warnings, "\n")
			for _, w := range tc.warnings {
				if !strings.Contains(all, w) {
					t.Errorf("build warnings %q lack %q", res.Warnings, w)
				}
			}
			if c, r := install.Material(openArchive(t, out, nil).Archive.Images()); c != tc.cosign || r != tc.referrers {
				t.Errorf("the archive carries %d cosign manifests and %d referrers, want %d and %d", c, r, tc.cosign, tc.referrers)
			}
			site := prefix + "/site-" + strings.ReplaceAll(tc.name, " ", "-")
			lres, err := install.Load(ctx, openArchive(t, out, nil), install.LoadOptions{Registry: host + "/" + site})
			if err != nil {
				t.Fatal(err)
			}
			target, _, _ := strings.Cut(lres.Map[src+":1"], "@")
			repo := plainRepo(t, target)
			got := map[digest.Digest]bool{}
			for subject, want := range tc.want {
				var have []digest.Digest
				if err := repo.Referrers(ctx, ocispec.Descriptor{Digest: subject}, "", func(page []ocispec.Descriptor) error {
					for _, d := range page {
						have = append(have, d.Digest)
						got[d.Digest] = true
					}
					return nil
				}); err != nil {
					t.Fatalf("referrers of %s at the site: %v", subject, err)
				}
				referrersTag := "sha256-" + subject.Encoded()
				if _, err := repo.Resolve(ctx, referrersTag); (err == nil) != tagged {
					t.Errorf("referrers tag %s at the site: %v (want it: %v)", referrersTag, err, tagged)
				}
				slices.Sort(have)
				slices.Sort(want)
				if !slices.Equal(have, want) {
					t.Errorf("referrers of %s at the site: %v, want %v", subject, have, want)
				}
			}
			for _, d := range tc.gone {
				if got[d] {
					t.Errorf("referrer %s was loaded", d)
				}
			}
			k, err := cosign.ParsePublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			if err := cosign.Verify(ctx, repo, amd64.Digest, k); err != nil {
				t.Errorf("the platform manifest's signature at the site: %v", err)
			}
			if _, err := repo.Resolve(ctx, cosign.SignatureTag(root.Digest, "sig")); err != nil {
				t.Errorf("the index's (keyless) signature tag at the site: %v", err)
			}
			// Loading again pushes nothing and keeps the referrers.
			again, err := install.Load(ctx, openArchive(t, out, nil), install.LoadOptions{Registry: host + "/" + site})
			if err != nil || again.Push.BlobsPushed != 0 {
				t.Fatalf("second load: %v, %+v", err, again.Push)
			}
		})
	}
}

func plainRepo(t *testing.T, ref string) *remote.Repository {
	t.Helper()
	repo, err := remote.NewRepository(ref)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	return repo
}

// TestLoadKeepsSiteSignatures: the site signed the image itself before
// the package was loaded; load adds the carried signature to the site's
// cosign tag instead of replacing it, so both keys verify, and a second
// load changes nothing.
func TestLoadKeepsSiteSignatures(t *testing.T) {
	ctx := context.Background()
	sp := loadSigned(t)
	d, pub, out, dst, repoRef := sp.digest, sp.pub, sp.archive, sp.site, sp.repoRef
	// the site's own signature replaces the tag (as cosign sign --force
	// would), then the package is loaded again: it must stay
	siteKey, sitePub := cosigntest.NewECDSAKey(t)
	cosigntest.Sign(t, repoRef, d, d, siteKey)
	for i := range 2 {
		if _, err := install.Load(ctx, openArchive(t, out, nil), install.LoadOptions{Registry: dst + "/mirror"}); err != nil {
			t.Fatalf("load %d: %v", i+2, err)
		}
		repo := plainRepo(t, repoRef)
		for who, p := range map[string][]byte{"the site's": sitePub, "the carried": pub} {
			k, err := cosign.ParsePublicKey(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := cosign.Verify(ctx, repo, d, k); err != nil {
				t.Errorf("load %d: %s signature: %v", i+2, who, err)
			}
		}
		desc, err := repo.Resolve(ctx, cosign.SignatureTag(d, "sig"))
		if err != nil {
			t.Fatal(err)
		}
		rc, err := repo.Fetch(ctx, desc)
		if err != nil {
			t.Fatal(err)
		}
		var m ocispec.Manifest
		err = json.NewDecoder(rc).Decode(&m)
		rc.Close()
		if err != nil || len(m.Layers) != 2 {
			t.Errorf("load %d: signature manifest holds %d layers (%v), want the site's and the carried one", i+2, len(m.Layers), err)
		}
	}
}

// signedLoad is an image signed with cosign at its source, built into a
// package and loaded once into a site registry.
type signedLoad struct {
	digest  digest.Digest
	pub     []byte // the signing key's public half
	archive string // the built package
	site    string // the site registry (packages load under site/mirror)
	repoRef string // the relocated image's repository at the site
}

func loadSigned(t *testing.T) signedLoad {
	t.Helper()
	ctx := context.Background()
	src := fixture.Registry(t)
	key, pub := cosigntest.NewECDSAKey(t)
	d := fixture.PushImage(t, src+"/team/signed:1", fixture.ImageOptions{Layers: []int{256}, Platforms: []string{"linux/amd64"}, Seed: 7}).Digest
	cosigntest.Sign(t, src+"/team/signed", d, d, key)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "skiff.yaml"), []byte("apiVersion: skiff.dev/v1alpha1\nkind: Package\nmetadata: {name: sig, version: 1.0.0}\nimages: ["+src+"/team/signed:1]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sig.skiff")
	if _, err := build.Build(ctx, build.Options{Spec: dir, Output: out, NoSBOM: true}); err != nil {
		t.Fatal(err)
	}
	dst := fixture.Registry(t)
	lres, err := install.Load(ctx, openArchive(t, out, nil), install.LoadOptions{Registry: dst + "/mirror"})
	if err != nil {
		t.Fatal(err)
	}
	target := lres.Map[src+"/team/signed:1"]
	repoRef := target[:len(target)-len("@"+d.String())]
	return signedLoad{digest: d, pub: pub, archive: out, site: dst, repoRef: repoRef}
}
