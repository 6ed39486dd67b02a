package mirror_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/memory"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/mirror"
	"github.com/skiffhq/skiff/internal/registry"
)

// TestContainerdPullsThroughMirror: Debian's containerd, given the
// generated hosts directory, pulls docker.io/library/busybox:1.35 from a
// TLS site registry with basic auth (where skiff load puts it:
// REGISTRY/PREFIX/docker.io/library/busybox), and runs it; the relocated
// name pulls too.
func TestContainerdPullsThroughMirror(t *testing.T) {
	c := fixture.StartContainerd(t)

	const user, pass = "node", "n0de-secret"
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := fixture.WriteFiles(t, "", map[string]string{"htpasswd": user + ":" + string(hash) + "\n"})
	reg := fixture.StartRegistry(t, registry.Options{SelfSigned: true, Htpasswd: filepath.Join(htpasswd, "htpasswd")})
	site := reg.Addr() + "/site"

	// what skiff load leaves: the upstream host kept in the path
	store := memory.New()
	desc := fixture.BusyboxImage(t, store, fixture.BusyboxOptions{Files: map[string]string{"etc/skiff-test": "mirrored"}})
	repo, err := remote.NewRepository(site + "/docker.io/library/busybox")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(reg.CACertPEM())
	repo.Client = &auth.Client{
		Client:     &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
		Credential: auth.StaticCredential(reg.Addr(), auth.Credential{Username: user, Password: pass}),
	}
	ctx := context.Background()
	if err := oras.CopyGraph(ctx, store, repo, desc, oras.DefaultCopyGraphOptions); err != nil {
		t.Fatal(err)
	}
	if err := repo.Tag(ctx, desc, "1.35"); err != nil {
		t.Fatal(err)
	}

	files, err := mirror.Files(mirror.Containerd, mirror.Options{
		Registry: site, Upstreams: []string{"docker.io"}, CA: reg.CACertPEM(), Username: user, Password: pass,
	})
	if err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(c.Dir, "certs.d")
	if err := mirror.Write(hosts, files, false); err != nil {
		t.Fatal(err)
	}

	const ns = "skiff-mirror-test"
	c.Ctr(t, "-n", ns, "image", "pull", "--hosts-dir", hosts, "docker.io/library/busybox:1.35")
	out := c.Ctr(t, "-n", ns, "run", "--rm", "--cgroup", "", "docker.io/library/busybox:1.35", "mirror-test",
		"/bin/sh", "-c", "echo ran $(cat /etc/skiff-test)")
	if !strings.Contains(out, "ran mirrored") {
		t.Fatalf("container output %q, want %q", out, "ran mirrored")
	}

	// the relocated, digest-pinned name goes through the site registry's own hosts.toml
	relocated := site + "/docker.io/library/busybox@" + desc.Digest.String()
	c.Ctr(t, "-n", ns, "image", "pull", "--hosts-dir", hosts, relocated)

	// without the generated configuration the same pull fails (no CA, no credentials)
	if out, err := c.TryCtr(ctx, "-n", ns, "image", "pull", "--hosts-dir", filepath.Join(c.Dir, "none"), relocated); err == nil {
		t.Fatalf("pull without the mirror configuration succeeded:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(hosts, "docker.io", "hosts.toml")); err != nil {
		t.Fatal(err)
	}
}
