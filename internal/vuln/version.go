package vuln

import (
	"cmp"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// CompareDpkg compares two Debian package versions as dpkg does
// ([epoch:]upstream[-revision], "~" sorting before everything, even the
// end of the string). It returns -1, 0 or +1.
func CompareDpkg(a, b string) int {
	ea, ua, ra := splitDpkg(a)
	eb, ub, rb := splitDpkg(b)
	if c := compareDigits(ea, eb); c != 0 {
		return c
	}
	if c := verrevcmp(ua, ub); c != 0 {
		return c
	}
	return verrevcmp(ra, rb)
}

func splitDpkg(v string) (epoch, upstream, revision string) {
	v = strings.TrimSpace(v)
	epoch = "0"
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	upstream = v
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		upstream, revision = v[:i], v[i+1:]
	}
	return epoch, upstream, revision
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// dpkgOrder is dpkg's order(): digits and the end sort as 0, letters by
// themselves, "~" first, other characters after all letters.
func dpkgOrder(s string, i int) int {
	if i >= len(s) {
		return 0
	}
	c := s[i]
	switch {
	case isDigit(c):
		return 0
	case isAlpha(c):
		return int(c)
	case c == '~':
		return -1
	}
	return int(c) + 256
}

// verrevcmp is dpkg's comparison of an upstream version or revision.
func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac, bc := dpkgOrder(a, i), dpkgOrder(b, j)
			if ac != bc {
				return cmp.Compare(ac, bc)
			}
			i, j = min(i+1, len(a)), min(j+1, len(b))
		}
		si := i
		for i < len(a) && isDigit(a[i]) {
			i++
		}
		sj := j
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		if c := compareDigits(a[si:i], b[sj:j]); c != 0 {
			return c
		}
	}
	return 0
}

// compareDigits compares two decimal digit strings of any length.
func compareDigits(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// apk suffix ranks: pre-release suffixes sort before a release, the
// others after it.
var apkSuffix = map[string]int{"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "": 5, "cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}

var apkRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*)(?:-r([0-9]+))?$`)
var apkSuffixRe = regexp.MustCompile(`_(alpha|beta|pre|rc|cvs|svn|git|hg|p)([0-9]*)`)

// CompareApk compares two Alpine package versions (numbers separated by
// dots, an optional letter, _alpha/_beta/_pre/_rc/_cvs/_svn/_git/_hg/_p
// suffixes with numbers, and -rN). Versions outside that grammar are
// compared part by part.
func CompareApk(a, b string) int {
	ma, mb := apkRe.FindStringSubmatch(a), apkRe.FindStringSubmatch(b)
	if ma == nil || mb == nil {
		return compareNatural(a, b)
	}
	na, nb := strings.Split(ma[1], "."), strings.Split(mb[1], ".")
	for k := 0; k < max(len(na), len(nb)); k++ {
		switch {
		case k >= len(na):
			return -1
		case k >= len(nb):
			return 1
		}
		if c := compareDigits(na[k], nb[k]); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(ma[2], mb[2]); c != 0 {
		return c
	}
	sa, sb := apkSuffixRe.FindAllStringSubmatch(ma[3], -1), apkSuffixRe.FindAllStringSubmatch(mb[3], -1)
	for k := 0; k < max(len(sa), len(sb)); k++ {
		ra, rb, xa, xb := apkSuffix[""], apkSuffix[""], "", ""
		if k < len(sa) {
			ra, xa = apkSuffix[sa[k][1]], sa[k][2]
		}
		if k < len(sb) {
			rb, xb = apkSuffix[sb[k][1]], sb[k][2]
		}
		if c := cmp.Compare(ra, rb); c != 0 {
			return c
		}
		if c := compareDigits(xa, xb); c != 0 {
			return c
		}
	}
	return compareDigits(ma[4], mb[4])
}

// CompareSemver compares semantic versions leniently ("v1.2", "1.2.3-rc.1");
// anything that does not parse is compared part by part.
func CompareSemver(a, b string) int {
	va, ea := semver.NewVersion(strings.TrimPrefix(a, "go"))
	vb, eb := semver.NewVersion(strings.TrimPrefix(b, "go"))
	if ea != nil || eb != nil {
		return compareNatural(strings.TrimPrefix(a, "v"), strings.TrimPrefix(b, "v"))
	}
	return va.Compare(vb)
}

var pepRe = regexp.MustCompile(`^(?:v)?(?:([0-9]+)!)?([0-9]+(?:\.[0-9]+)*)(?:[-_.]?(a|alpha|b|beta|c|rc|pre|preview)[-_.]?([0-9]*))?(?:(?:[-_.]?(post|rev|r)[-_.]?([0-9]*))|-([0-9]+))?(?:[-_.]?(dev)[-_.]?([0-9]*))?(?:\+[a-z0-9.]+)?$`)

// ComparePEP440 compares Python versions (epoch, release, pre, post and
// dev releases; local versions are ignored). Versions outside PEP 440
// are compared part by part.
func ComparePEP440(a, b string) int {
	ma, mb := pepRe.FindStringSubmatch(strings.ToLower(strings.TrimSpace(a))), pepRe.FindStringSubmatch(strings.ToLower(strings.TrimSpace(b)))
	if ma == nil || mb == nil {
		return compareNatural(a, b)
	}
	if c := compareDigits(ma[1], mb[1]); c != 0 {
		return c
	}
	ra, rb := strings.Split(ma[2], "."), strings.Split(mb[2], ".")
	for k := 0; k < max(len(ra), len(rb)); k++ {
		x, y := "0", "0"
		if k < len(ra) {
			x = ra[k]
		}
		if k < len(rb) {
			y = rb[k]
		}
		if c := compareDigits(x, y); c != 0 {
			return c
		}
	}
	// Key: (pre-release rank, pre number, post, dev), where a dev
	// release without a pre or post release sorts before pre-releases.
	ka, kb := pepKey(ma), pepKey(mb)
	for k := range ka {
		if c := cmp.Compare(ka[k], kb[k]); c != 0 {
			return c
		}
	}
	return 0
}

func pepKey(m []string) [5]int {
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s) && i < 9; i++ {
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	var k [5]int
	pre := map[string]int{"a": 1, "alpha": 1, "b": 2, "beta": 2, "c": 3, "rc": 3, "pre": 3, "preview": 3}[m[3]]
	post, hasPost := -1, m[5] != "" || m[7] != ""
	if hasPost {
		post = num(m[6] + m[7])
	}
	hasDev := m[8] != ""
	switch {
	case pre > 0:
		k[0], k[1] = pre, num(m[4])
	case hasDev && !hasPost:
		k[0] = 0 // 1.0.dev1 < 1.0a1
	default:
		k[0] = 4 // a final release sorts after its pre-releases
	}
	k[2] = post
	k[3] = 1
	if hasDev {
		k[3], k[4] = 0, num(m[9])
	}
	return k
}

// compareNatural compares digit runs numerically and other runs as
// text.
func compareNatural(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			si, sj := i, j
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			if c := compareDigits(a[si:i], b[sj:j]); c != 0 {
				return c
			}
			continue
		}
		if c := cmp.Compare(a[i], b[j]); c != 0 {
			return c
		}
		i++
		j++
	}
	return cmp.Compare(len(a)-i, len(b)-j)
}

// compareFor returns the version order of an OSV ecosystem.
func compareFor(ecosystem string) func(a, b string) int {
	base, _, _ := strings.Cut(ecosystem, ":")
	switch base {
	case "Debian", "Ubuntu":
		return CompareDpkg
	case "Alpine":
		return CompareApk
	case "PyPI":
		return ComparePEP440
	}
	return CompareSemver
}
