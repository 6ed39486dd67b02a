package vuln

import "testing"

func TestCompareDpkg(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.0-0", 0},
		{"1.0-1", "1.0-2", -1},
		{"1:1.0", "2.0", 1},
		{"0:1.0", "1.0", 0},
		{"1.0~rc1", "1.0", -1},
		{"1.0~~", "1.0~", -1},
		{"1.0~", "1.0", -1},
		{"1.0", "1.0a", -1},
		{"1.0a", "1.0+", -1},
		{"1.0+dfsg", "1.0", 1},
		{"2.36-9+deb12u4", "2.36-9+deb12u7", -1},
		{"2.36-9+deb12u10", "2.36-9+deb12u7", 1},
		{"2024a-0+deb12u1", "2024a-0+deb12u1", 0},
		{"1.2.3-1", "1.2.10-1", -1},
		{"1.01", "1.1", 0},
		{"7.88.1-10+deb12u5", "7.88.1-10+deb12u12", -1},
		{"1:2.0-1", "1:2.0-1ubuntu1", -1},
		{"10", "9", 1},
		{"99999999999999999999", "100000000000000000000", -1},
		{"1.0-1-2", "1.0-1-1", 1}, // revision after the last hyphen
	}
	for _, tt := range tests {
		if got := CompareDpkg(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareDpkg(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareDpkg(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareDpkg(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestCompareApk(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.2.4-r2", "1.2.4-r3", -1},
		{"1.2.4-r2", "1.2.4-r2", 0},
		{"1.2.4", "1.2.4-r0", 0},
		{"1.2.10", "1.2.9", 1},
		{"1.2", "1.2.0", -1},
		{"1.2.3a", "1.2.3", 1},
		{"1.2.3a", "1.2.3b", -1},
		{"1.0_rc1", "1.0", -1},
		{"1.0_alpha2", "1.0_beta1", -1},
		{"1.0_rc2", "1.0_rc10", -1},
		{"1.0_p1", "1.0", 1},
		{"1.0_p1", "1.0_p2", -1},
		{"1.0_git20240101", "1.0", 1},
		{"1.36.1-r15", "1.36.1-r2", 1},
		{"3.1.4-r5", "3.1.4_p1-r0", -1},
	}
	for _, tt := range tests {
		if got := CompareApk(tt.a, tt.b); got != tt.want {
			t.Errorf("CompareApk(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := CompareApk(tt.b, tt.a); got != -tt.want {
			t.Errorf("CompareApk(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestCompareSemverAndPEP440(t *testing.T) {
	tests := []struct {
		cmp  func(a, b string) int
		a, b string
		want int
	}{
		{CompareSemver, "1.1.0", "1.3.0", -1},
		{CompareSemver, "v0.25.0", "0.26.0", -1},
		{CompareSemver, "2.0.0-beta.1", "2.0.0", -1},
		{CompareSemver, "2.0.0-beta.1", "2.0.0-alpha", 1},
		{CompareSemver, "v1.22.1", "1.22.1", 0},
		{CompareSemver, "1.10", "1.9", 1},
		{CompareSemver, "v0.0.0-20240101000000-abcdef123456", "0.1.0", -1},
		{ComparePEP440, "0.6.3", "0.6.3", 0},
		{ComparePEP440, "1.0", "1.0.0", 0},
		{ComparePEP440, "1.0a1", "1.0", -1},
		{ComparePEP440, "1.0.dev1", "1.0a1", -1},
		{ComparePEP440, "1.0rc1", "1.0b2", 1},
		{ComparePEP440, "1.0.post1", "1.0", 1},
		{ComparePEP440, "1!0.1", "2.0", 1},
		{ComparePEP440, "2.31.0", "2.32.0", -1},
	}
	for _, tt := range tests {
		if got := tt.cmp(tt.a, tt.b); got != tt.want {
			t.Errorf("compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := tt.cmp(tt.b, tt.a); got != -tt.want {
			t.Errorf("compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestCVSS3(t *testing.T) {
	tests := []struct {
		vector string
		want   float64
	}{
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1},
		{"CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5},
		{"CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:N", 0},
	}
	for _, tt := range tests {
		got, ok := cvss3(tt.vector)
		if !ok || got != tt.want {
			t.Errorf("cvss3(%s) = %v, %v; want %v", tt.vector, got, ok, tt.want)
		}
	}
	if _, ok := cvss3("CVSS:3.1/AV:X"); ok {
		t.Error("cvss3 accepted a broken vector")
	}
}

func FuzzDpkgCompare(f *testing.F) {
	f.Add("1:2.36-9+deb12u4", "2.36-9~bpo")
	f.Add("", "~")
	f.Add("1.0-", "-1.0")
	f.Add(":", "::")
	f.Fuzz(func(t *testing.T, a, b string) {
		x, y := CompareDpkg(a, b), CompareDpkg(b, a)
		if x != -y {
			t.Fatalf("CompareDpkg(%q, %q) = %d but reversed = %d", a, b, x, y)
		}
		if CompareDpkg(a, a) != 0 {
			t.Fatalf("CompareDpkg(%q, itself) != 0", a)
		}
		CompareApk(a, b)
		CompareSemver(a, b)
		ComparePEP440(a, b)
	})
}
