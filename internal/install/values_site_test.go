package install

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// valuesFiles is a one-chart package whose ConfigMap shows two values;
// the spec gives the chart a package default (color).
func valuesFiles(version string) map[string]string {
	return map[string]string{
		"skiff.yaml": `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: vals, version: ` + version + `}
charts:
  - {name: web, path: charts/web, values: {color: blue}}
`,
		"charts/web/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"charts/web/values.yaml": "greeting: hello\npassword: none\ncolor: red\n",
		"charts/web/templates/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: web-config}
data: {greeting: "{{ .Values.greeting }}", password: "{{ .Values.password }}", color: "{{ .Values.color }}"}
`,
	}
}

func TestValuesRuleInMemory(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	v1 := buildPackage(t, valuesFiles("1.0.0"))
	v2 := buildPackage(t, valuesFiles("1.1.0"))
	data := func() map[string]any {
		cm := f.kube.object("ConfigMap", "vals", "web-config")
		if cm == nil {
			t.Fatal("no ConfigMap web-config")
		}
		return cm.Object["data"].(map[string]any)
	}

	o := f.options("vals", "vals")
	o.Values = []ValuesFile{{Name: "site.yaml", Data: []byte("web: {greeting: hi}\n")}}
	o.Set = []string{"web.password=" + marker}
	if _, err := Install(ctx, v1, o); err != nil {
		t.Fatalf("install: %v", err)
	}
	if d := data(); d["greeting"] != "hi" || d["password"] != marker || d["color"] != "blue" {
		t.Fatalf("after install: %v", d)
	}

	// A misrouted --set is refused before a revision is recorded.
	bad := f.options("vals", "vals")
	bad.Set = []string{"nochart.password=" + marker}
	if _, err := Upgrade(ctx, v2, bad); err == nil || strings.Contains(err.Error(), marker) {
		t.Errorf("upgrade with a misrouted --set: %v", err)
	}

	// No values and no choice: refused, nothing changes.
	if _, err := Upgrade(ctx, v2, f.options("vals", "vals")); !errors.Is(err, ErrValuesDropped) {
		t.Fatalf("upgrade without values: %v, want ErrValuesDropped", err)
	}
	if got := f.history(t, "vals", "vals"); got != "1:deployed" {
		t.Errorf("history after the refused upgrade: %s", got)
	}

	o = f.options("vals", "vals")
	o.ReuseValues = true
	o.Values = []ValuesFile{{Name: "site2.yaml", Data: []byte("web: {greeting: salut}\n")}}
	if _, err := Upgrade(ctx, v2, o); err != nil {
		t.Fatalf("upgrade --reuse-values: %v", err)
	}
	if d := data(); d["greeting"] != "salut" || d["password"] != marker || d["color"] != "blue" {
		t.Errorf("after --reuse-values: %v", d)
	}

	o = f.options("vals", "vals")
	o.ResetValues = true
	if _, err := Upgrade(ctx, v2, o); err != nil {
		t.Fatalf("upgrade --reset-values: %v", err)
	}
	if d := data(); d["greeting"] != "hello" || d["password"] != "none" || d["color"] != "blue" {
		t.Errorf("after --reset-values: %v", d)
	}

	// The records never hold the --set value; get values redacts it
	// unless asked.
	hist, err := f.store().History(ctx, "vals", "vals")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(hist)
	if strings.Contains(string(b), marker) {
		t.Errorf("records hold the --set value: %s", b)
	}
	if !strings.Contains(string(b), `"--set web.password"`) {
		t.Errorf("records do not name the --set key: %s", b)
	}
	_, vals, err := GetValues(ctx, f.cluster(), "vals", "vals", ValuesOptions{Revision: 2})
	if err != nil {
		t.Fatal(err)
	}
	web, _ := vals["web"].(map[string]any)
	if web["password"] != Redacted || web["greeting"] != "salut" {
		t.Errorf("get values --revision 2: %v", vals)
	}
	if _, ok := web["color"]; ok {
		t.Errorf("get values shows package defaults: %v", vals)
	}
	_, vals, err = GetValues(ctx, f.cluster(), "vals", "vals", ValuesOptions{Revision: 2, ShowSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if web, _ := vals["web"].(map[string]any); web["password"] != marker {
		t.Errorf("get values --show-secrets: %v", vals)
	}
}

// The encrypted values file is kept sealed in the record: get values
// shows its values only to a holder of the identity (Decrypt).
func TestGetValuesEncryptedInMemory(t *testing.T) {
	ctx := context.Background()
	f := newFakeSite()
	p := buildPackage(t, valuesFiles("1.0.0"))
	plain := []byte("web: {password: " + marker + "}\n")
	sealed := []byte("age-encryption.org/v1 (stand-in ciphertext)")
	o := f.options("vals", "vals")
	o.Values = []ValuesFile{{Name: "secret.age", Data: plain, Secret: true, Sealed: sealed}}
	o.Set = []string{"web.greeting=" + marker + "-set"}
	if _, err := Install(ctx, p, o); err != nil {
		t.Fatalf("install: %v", err)
	}
	rec, vals, err := GetValues(ctx, f.cluster(), "vals", "vals", ValuesOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.SealedValues) != 1 || string(rec.SealedValues[0].Data) != string(sealed) {
		t.Errorf("record keeps %+v, want the sealed file", rec.SealedValues)
	}
	if web := vals["web"].(map[string]any); web["password"] != Redacted || web["greeting"] != Redacted {
		t.Errorf("get values without identity: %v", vals)
	}
	decrypt := func(name string, b []byte) ([]byte, error) {
		if name != "secret.age" || string(b) != string(sealed) {
			return nil, errors.New("wrong file")
		}
		return plain, nil
	}
	_, vals, err = GetValues(ctx, f.cluster(), "vals", "vals", ValuesOptions{Decrypt: decrypt})
	if err != nil {
		t.Fatal(err)
	}
	if web := vals["web"].(map[string]any); web["password"] != marker || web["greeting"] != Redacted {
		t.Errorf("get values with the identity: %v (the --set value stays redacted)", vals)
	}
	_, _, err = GetValues(ctx, f.cluster(), "vals", "vals", ValuesOptions{Decrypt: func(string, []byte) ([]byte, error) { return nil, errors.New("no identity matched") }})
	if err == nil || !strings.Contains(err.Error(), "secret.age") {
		t.Errorf("wrong identity: %v", err)
	}
}
