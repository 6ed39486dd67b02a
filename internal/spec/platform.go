package spec

import (
	"fmt"
	"slices"
	"strings"
)

// Operating systems and architectures an image can be built for: Go's
// GOOS and GOARCH values, which OCI image platforms use.
var (
	knownOS = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
		"linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos"}
	knownArch = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le",
		"mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "sparc64", "wasm"}
	// knownVariants lists the variants OCI defines for some architectures;
	// the others take any variant.
	knownVariants = map[string][]string{
		"arm":   {"v5", "v6", "v7", "v8"},
		"arm64": {"v8", "v8.0", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9", "v9.0", "v9.1", "v9.2", "v9.3", "v9.4", "v9.5"},
		"amd64": {"v1", "v2", "v3", "v4"},
	}
)

// checkPlatform reports why os/arch[/variant] p cannot be a real image
// platform ("" when it can), suggesting the closest known name.
func checkPlatform(p string) string {
	parts := strings.Split(p, "/")
	os, arch := parts[0], parts[1]
	if !slices.Contains(knownOS, os) {
		return fmt.Sprintf("platform %q: unknown operating system %q%s", p, os, suggest(os, knownOS))
	}
	if !slices.Contains(knownArch, arch) {
		return fmt.Sprintf("platform %q: unknown architecture %q%s", p, arch, suggest(arch, knownArch))
	}
	if len(parts) == 3 {
		if vs, ok := knownVariants[arch]; ok && !slices.Contains(vs, parts[2]) {
			return fmt.Sprintf("platform %q: %s has no variant %q (known: %s)", p, arch, parts[2], strings.Join(vs, ", "))
		}
	}
	return ""
}

// suggest names the known word closest to w, if one is close.
func suggest(w string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(w, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ": write it like linux/amd64 or linux/arm64"
	}
	return fmt.Sprintf(": did you mean %q?", best)
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
