package hub_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/hub/hubtest"
)

// tierProbeEnv names the tier TestMissingTierFailsInCI probes in a child
// test process.
const tierProbeEnv = "SKIFF_TIER_PROBE"

// TestMissingTierFailsInCI: in CI ($CI set, as hack/test.sh runs there) a
// test whose dependency is missing fails instead of being skipped, for
// every tier the hub's tests use. Each tier is probed in a child test
// process with the dependency taken away.
func TestMissingTierFailsInCI(t *testing.T) {
	probes := map[string]func(t *testing.T){
		"postgres":        func(t *testing.T) { hubtest.Postgres(t) },
		"control plane":   func(t *testing.T) { fixture.Kubeconfig(t) },
		"docker-registry": func(t *testing.T) { fixture.DockerRegistry(t) },
		"chromium":        func(t *testing.T) { findBrowser(t) },
		"s3":              func(t *testing.T) { hubtest.S3(t) },
	}
	if tier := os.Getenv(tierProbeEnv); tier != "" {
		probes[tier](t)
		return
	}
	for tier := range probes {
		t.Run(tier, func(t *testing.T) {
			for _, ci := range []bool{false, true} {
				cmd := exec.Command(os.Args[0], "-test.run=^TestMissingTierFailsInCI$", "-test.v")
				cmd.Dir = t.TempDir()
				for _, kv := range os.Environ() {
					k, _, _ := strings.Cut(kv, "=")
					switch k {
					case "CI", hubtest.PostgresEnv, hubtest.S3Env, fixture.KubeconfigEnv, fixture.DockerRegistryEnv, "PATH":
						continue
					}
					cmd.Env = append(cmd.Env, kv)
				}
				cmd.Env = append(cmd.Env, tierProbeEnv+"="+tier, "PATH="+t.TempDir())
				if ci {
					cmd.Env = append(cmd.Env, "CI=true")
				}
				out, err := cmd.CombinedOutput()
				skipped := strings.Contains(string(out), "--- SKIP")
				switch {
				case ci && (err == nil || skipped):
					t.Errorf("CI=true, %s missing: the test did not fail (err %v):\n%s", tier, err, out)
				case !ci && (err != nil || !skipped):
					t.Errorf("outside CI, %s missing: the test was not skipped (err %v):\n%s", tier, err, out)
				}
			}
		})
	}
}
