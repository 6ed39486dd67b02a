package vuln

import "testing"

func FuzzImportOSV(f *testing.F) {
	f.Add([]byte(`{"id":"GHSA-x","aliases":["CVE-1"],"affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}],"versions":["0.9.0"]}],"database_specific":{"severity":"HIGH"}}`))
	f.Add([]byte(`{"id":"D","severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"}],"affected":[{"package":{"ecosystem":"Debian:12","name":"glibc"},"ranges":[{"type":"ECOSYSTEM","events":[{"fixed":"1"},{"introduced":"0"},{"last_affected":"2"},{"limit":"3"}]}]}]}`))
	f.Add([]byte(`{"id":"x","database_specific":{"severity":7}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, _, err := ParseAdvisory(data)
		if err != nil {
			return
		}
		if a.ID == "" {
			t.Fatal("advisory without id accepted")
		}
		for i := range a.Affected {
			a.Affected[i].affects("1.0.0")
			a.Affected[i].affects("")
		}
	})
}
