package install

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/release"
)

const marker = "Planted-Marker-7f3c"

func valuesPackage() *bundle.Description {
	return &bundle.Description{Name: "shop", Version: "1.0.0", Charts: []bundle.Chart{
		{Name: "web", Values: json.RawMessage(`{"replicas":1,"image":{"tag":"v1"}}`)},
		{Name: "db"},
	}}
}

// A --set value reaches the chart's values but never the record, its
// value sources or an error: the record keeps the key path only.
func TestSetValuesRecordedAsKeyPaths(t *testing.T) {
	d := valuesPackage()
	files := []ValuesFile{
		{Name: "plain.yaml", Data: []byte("web: {replicas: 2}\n")},
		{Name: "secret.age", Data: []byte("db: {password: " + marker + "}\n"), Secret: true},
	}
	sets := []string{"web.adminPassword=" + marker, "web.auth.token=" + marker + ",auth.user=admin", "db.list[0]=" + marker}
	uv, err := splitValues(d, files, sets)
	if err != nil {
		t.Fatal(err)
	}
	defaults, user, err := splitChartValues(d.Charts[0], uv["web"])
	if err != nil {
		t.Fatal(err)
	}
	if user["adminPassword"] != marker || user["replicas"] != float64(2) && user["replicas"] != 2 {
		t.Errorf("user values of web = %v", user)
	}
	if _, ok := user["image"]; ok || defaults["replicas"] != float64(1) {
		t.Errorf("defaults %v and user values %v are not apart", defaults, user)
	}

	rec := &release.Record{Values: map[string]any{}}
	for name, u := range uv {
		if len(u.record) > 0 {
			rec.Values[name] = u.record
		}
	}
	rec.ValueSources = valueSources(files, uv, d)
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), marker) {
		t.Errorf("record holds the --set or encrypted value: %s", b)
	}
	js := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(b))
	for _, want := range []string{`"adminPassword":"<redacted>"`, `"token":"<redacted>"`, `"--set web.adminPassword"`, `"--set web.auth.user"`, `"-f secret.age (encrypted)"`, `"replicas":2`} {
		if !strings.Contains(js, want) {
			t.Errorf("record lacks %s: %s", want, js)
		}
	}

	// Malformed or misrouted --set expressions: the error names the key,
	// never the value.
	for _, bad := range []string{"nochart.password=" + marker, "web.a[x]=" + marker, "password=" + marker} {
		_, err := splitValues(d, nil, []string{bad})
		if err == nil {
			t.Errorf("%s: no error", bad)
			continue
		}
		if strings.Contains(err.Error(), marker) {
			t.Errorf("error quotes the --set value: %v", err)
		}
	}
}

func TestCheckValues(t *testing.T) {
	prev := &release.Record{Deployment: "shop", Revision: 3, ValueSources: []string{"-f plain.yaml", "--set web.replicas"}}
	prevSecret := &release.Record{Deployment: "shop", Revision: 3, ValueSources: []string{"-f secret.age (encrypted)"}}
	plain := []ValuesFile{{Name: "plain.yaml", Data: []byte("web: {}")}}
	secret := []ValuesFile{{Name: "secret.age", Data: []byte("web: {}"), Secret: true}}
	tests := []struct {
		name    string
		prev    *release.Record
		o       Options
		dropped bool
		errText string
	}{
		{name: "first revision", prev: nil},
		{name: "no values before, none now", prev: &release.Record{Revision: 1}},
		{name: "values before, none now", prev: prev, dropped: true, errText: "-f plain.yaml, --set web.replicas"},
		{name: "values again", prev: prev, o: Options{Values: plain}},
		{name: "set only", prev: prev, o: Options{Set: []string{"web.replicas=2"}}},
		{name: "reuse", prev: prev, o: Options{ReuseValues: true}},
		{name: "reset", prev: prev, o: Options{ResetValues: true}},
		{name: "both", prev: prev, o: Options{ReuseValues: true, ResetValues: true}, errText: "contradict"},
		{name: "encrypted dropped", prev: prevSecret, o: Options{Values: plain}, dropped: true, errText: "secret.age"},
		{name: "encrypted given", prev: prevSecret, o: Options{Values: secret}},
		{name: "encrypted reset", prev: prevSecret, o: Options{Values: plain, ResetValues: true}},
		{name: "older record", prev: &release.Record{Revision: 2, Values: map[string]any{"web": map[string]any{"a": 1}}}, dropped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkValues(tt.prev, tt.o)
			if errors.Is(err, ErrValuesDropped) != tt.dropped {
				t.Fatalf("error %v, want dropped=%v", err, tt.dropped)
			}
			if (err != nil) != (tt.dropped || tt.errText != "") {
				t.Fatalf("error %v", err)
			}
			if tt.errText != "" && !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("error %q lacks %q", err, tt.errText)
			}
		})
	}
}

func TestMaskRedacted(t *testing.T) {
	vals := map[string]any{"replicas": 2, "adminPassword": marker, "auth": map[string]any{"token": marker, "user": "admin"}, "list": []any{marker}}
	recorded := map[string]any{"replicas": 2, "adminPassword": Redacted, "auth": map[string]any{"token": Redacted}, "list": Redacted}
	got := maskRedacted(vals, recorded)
	b, _ := json.Marshal(got)
	if strings.Contains(string(b), marker) {
		t.Errorf("masked values hold a secret: %s", b)
	}
	if got["replicas"] != 2 || got["auth"].(map[string]any)["user"] != "admin" {
		t.Errorf("masked too much: %v", got)
	}
	if vals["adminPassword"] != marker {
		t.Error("maskRedacted modified its input")
	}
}
