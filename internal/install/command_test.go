package install

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/fixture"
	"github.com/skiffhq/skiff/internal/release"
)

// commandFiles is a package with a chart "web" (one ConfigMap), a carried
// script bin/step.sh that reports its environment, arguments and working
// directory, and the lifecycle given.
func commandFiles(version, lifecycle string) map[string]string {
	return map[string]string{
		"skiff.yaml": `apiVersion: skiff.dev/v1alpha1
kind: Package
metadata: {name: shop, version: ` + version + `}
charts:
  - {name: web, path: charts/web, values: {replicas: 2}}
files:
  - {source: step.sh, target: bin/step.sh}
  - {source: motd.txt, target: etc/motd.txt}
lifecycle:
` + lifecycle,
		"charts/web/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"charts/web/values.yaml": "greeting: hello\n",
		"charts/web/templates/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ .Release.Name }}-config"}
data: {greeting: "{{ .Values.greeting }}"}
`,
		"step.sh": `#!/bin/sh
echo "args: $*"
echo "pwd: $(pwd)"
echo "motd: $(cat "$SKIFF_FILES/etc/motd.txt")"
echo "env: $SKIFF_OPERATION $SKIFF_PHASE $SKIFF_DEPLOYMENT $SKIFF_NAMESPACE $SKIFF_PACKAGE $SKIFF_VERSION $SKIFF_REVISION $SKIFF_REGISTRY step=$SKIFF_STEP color=$COLOR"
echo "passphrase: [$SKIFF_PASSPHRASE]"
echo "to stderr" >&2
if [ -n "$SKIFF_VALUES" ]; then echo "values: $(cat "$SKIFF_VALUES")"; fi
exit "${EXIT:-0}"
`,
		"motd.txt": "welcome aboard\n",
	}
}

// buildCommandPackage builds commandFiles with step.sh executable.
func buildCommandPackage(t *testing.T, files map[string]string) *Package {
	t.Helper()
	dir := t.TempDir()
	fixture.WriteFiles(t, dir, files)
	if err := os.Chmod(filepath.Join(dir, "step.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "p.skiff")
	if _, err := build.Build(context.Background(), build.Options{Spec: dir, Output: out}); err != nil {
		t.Fatalf("build: %v", err)
	}
	p, err := Open(context.Background(), out, bundle.OpenOptions{SkipSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// outputOf collects the output lines command steps report.
type outputOf struct {
	mu    sync.Mutex
	lines []string
	all   []string // every event message
}

func (c *outputOf) progress(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, e.Message)
	if e.Step == "output" {
		c.lines = append(c.lines, e.Message)
	}
}

func (c *outputOf) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

func TestCommandSteps(t *testing.T) {
	ctx := context.Background()
	t.Setenv("SKIFF_PASSPHRASE", "not-for-steps")
	lifecycle := `  preInstall:
    - name: greet
      run:
        command: ./bin/step.sh
        args: [one, "two words"]
        env: {COLOR: blue}
  postUpgrade:
    - name: in etc
      run: {command: ../bin/step.sh, dir: etc}
    - name: shell
      run:
        command: echo "shell $1 $2 $SKIFF_PHASE" | tr a-z A-Z
        args: [x, y]
        shell: true
  preDelete:
    - name: goodbye
      run: {command: sh, args: [-c, "echo bye from $SKIFF_OPERATION"]}
`
	p := buildCommandPackage(t, commandFiles("1.0.0", lifecycle))
	f := newFakeSite()

	// A dry run lists the commands it would run (without running them,
	// so without --allow-commands).
	var dry strings.Builder
	o := f.options("shop", "shop")
	o.DryRun, o.DryRunOut = true, &dry
	if _, err := Install(ctx, p, o); err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if want := `# lifecycle: run preInstall: step "greet": ./bin/step.sh one "two words" (on this machine; needs --allow-commands)` + "\n"; !strings.HasSuffix(dry.String(), want) {
		t.Errorf("dry run ends with\n%s\nwant %s", dry.String()[max(0, dry.Len()-300):], want)
	}

	// Without --allow-commands: refused before anything is recorded.
	_, err := Install(ctx, p, f.options("shop", "shop"))
	if !errors.Is(err, ErrCommandsNotAllowed) {
		t.Fatalf("install without AllowCommands: %v, want ErrCommandsNotAllowed", err)
	}
	for _, want := range []string{`runs a command on this machine`, `preInstall step "greet": ./bin/step.sh one "two words"`, "--allow-commands", "skiff inspect"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if h := f.history(t, "shop", "shop"); !strings.Contains(h, "not found") {
		t.Errorf("a refused install left records: %s", h)
	}
	if f.kube.has("ConfigMap", "shop", "shop-web-config") {
		t.Error("a refused install applied the chart")
	}

	out := &outputOf{}
	o = f.options("shop", "shop")
	o.AllowCommands, o.Progress = true, out.progress
	res, err := Install(ctx, p, o)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	got := out.text()
	for _, want := range []string{
		"greet: args: one two words",
		"greet: motd: welcome aboard",
		"greet: env: install preInstall shop shop shop 1.0.0 1 registry.test/site step=greet color=blue",
		"greet: passphrase: []",
		"greet: to stderr",
		`greet: values: {"web":{"replicas":2}}`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	var pwd string
	for _, l := range out.lines {
		if p, ok := strings.CutPrefix(l, "  greet: pwd: "); ok {
			pwd = p
		}
	}
	if filepath.Base(pwd) != "files" || !strings.HasPrefix(filepath.Base(filepath.Dir(pwd)), "skiff-steps-") {
		t.Errorf("the step ran in %q, not in the workspace's files directory", pwd)
	}
	if _, err := os.Stat(filepath.Dir(pwd)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("workspace %s left behind: %v", filepath.Dir(pwd), err)
	}
	steps := res.Record.Steps
	if len(steps) != 1 || steps[0].Name != "greet" || steps[0].Phase != "preInstall" || steps[0].Kind != "run" ||
		steps[0].Result != "succeeded" || steps[0].ExitCode != 0 || steps[0].Duration == "" || steps[0].Command != `./bin/step.sh one "two words"` {
		t.Errorf("recorded steps %+v", steps)
	}
	out.lines = nil
	p2 := buildCommandPackage(t, commandFiles("1.1.0", lifecycle))
	res, err = Upgrade(ctx, p2, o)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	got = out.text()
	for _, want := range []string{"in etc: env: upgrade postUpgrade shop shop shop 1.1.0 2 ", "/files/etc", "shell: SHELL X Y POSTUPGRADE"} {
		if !strings.Contains(got, want) {
			t.Errorf("upgrade output lacks %q:\n%s", want, got)
		}
	}
	if n := len(res.Record.Steps); n != 2 {
		t.Errorf("upgrade recorded %d steps, want 2: %+v", n, res.Record.Steps)
	}

	// A rollback runs no steps and records none.
	rb, err := Rollback(ctx, "shop", "shop", RollbackOptions{Cluster: f.cluster()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rb.Steps) != 0 {
		t.Errorf("rollback recorded steps %+v", rb.Steps)
	}

	// Uninstall: the preDelete command is refused without the flag (nothing
	// removed), runs with it.
	err = Uninstall(ctx, "shop", "shop", UninstallOptions{Cluster: f.cluster()})
	if !errors.Is(err, ErrCommandsNotAllowed) || !strings.Contains(err.Error(), `preDelete step "goodbye"`) {
		t.Fatalf("uninstall without AllowCommands: %v", err)
	}
	if !f.kube.has("ConfigMap", "shop", "shop-web-config") {
		t.Fatal("a refused uninstall removed the chart")
	}
	out.lines = nil
	if err := Uninstall(ctx, "shop", "shop", UninstallOptions{Cluster: f.cluster(), AllowCommands: true, KeepHistory: true, Progress: out.progress}); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	if got := out.text(); !strings.Contains(got, "goodbye: bye from uninstall") {
		t.Errorf("uninstall output: %s", got)
	}
	latest, err := f.store().Latest(ctx, "shop", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(latest.Steps); n == 0 || latest.Steps[n-1].Phase != "preDelete" || latest.Steps[n-1].Result != "succeeded" {
		t.Errorf("uninstall recorded steps %+v", latest.Steps)
	}
}

// A failing command fails the install like any step: the revision is
// failed, with the exit code recorded; --atomic removes what it created.
func TestCommandStepFails(t *testing.T) {
	ctx := context.Background()
	t.Setenv("EXIT", "3")
	lifecycle := `  postInstall:
    - name: check
      run: {command: ./bin/step.sh}
`
	p := buildCommandPackage(t, commandFiles("1.0.0", lifecycle))
	f := newFakeSite()
	o := f.options("shop", "shop")
	o.AllowCommands = true
	_, err := Install(ctx, p, o)
	if err == nil || !strings.Contains(err.Error(), `lifecycle step "check": ./bin/step.sh exited with code 3`) {
		t.Fatalf("install: %v", err)
	}
	if got := f.history(t, "shop", "shop"); got != "1:failed" {
		t.Errorf("history %s", got)
	}
	rec, _ := f.store().Latest(ctx, "shop", "shop")
	if s := rec.Steps; len(s) != 1 || s[0].Result != "failed" || s[0].ExitCode != 3 {
		t.Errorf("recorded steps %+v", s)
	}

	g := newFakeSite()
	o = g.options("shop", "shop")
	o.AllowCommands, o.Atomic = true, true
	_, err = Install(ctx, p, o)
	if err == nil || !strings.Contains(err.Error(), "--atomic: removed what the failed install created") {
		t.Fatalf("atomic install: %v", err)
	}
	if g.kube.has("ConfigMap", "shop", "shop-web-config") {
		t.Error("--atomic left the chart's ConfigMap")
	}
}

// A command that outlives its timeout is killed with what it started.
func TestCommandStepTimeout(t *testing.T) {
	ctx := context.Background()
	pidFile := filepath.Join(t.TempDir(), "pid")
	lifecycle := `  preInstall:
    - name: slow
      run:
        command: 'sleep 60 & echo $! > "$1"; wait'
        args: [` + pidFile + `]
        shell: true
      timeout: 2s
`
	p := buildCommandPackage(t, commandFiles("1.0.0", lifecycle))
	f := newFakeSite()
	o := f.options("shop", "shop")
	o.AllowCommands = true
	start := time.Now()
	_, err := Install(ctx, p, o)
	if err == nil || !strings.Contains(err.Error(), "did not finish within its timeout of 2s and was killed") {
		t.Fatalf("install: %v", err)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the step took %s to stop", took)
	}
	rec, _ := f.store().Latest(ctx, "shop", "shop")
	if s := rec.Steps; len(s) != 1 || s[0].Result != "timed out" || s[0].ExitCode != -1 {
		t.Errorf("recorded steps %+v", s)
	}
	// the background sleep died with the step
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Logf("the step was killed before it wrote its child's pid (%v): not checking the child", err)
		return
	}
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + pid); err != nil {
			break
		}
		if st, _ := os.ReadFile("/proc/" + pid + "/stat"); strings.Contains(string(st), ") Z ") {
			break // a zombie waiting for init: dead
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %s the step started still runs", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Secret values (an encrypted values file, --set) reach the command
// (SKIFF_VALUES) but never its reported output, the record or an error.
func TestCommandStepSecrets(t *testing.T) {
	ctx := context.Background()
	lifecycle := `  preInstall:
    - name: leak
      run:
        command: 'cat "$SKIFF_VALUES"; echo; echo "the secret is Planted-Marker-""7f3c-x and Planted-Marker-""7f3c2"; echo "multi second-line-""secret end"; exit 1'
        shell: true
`
	p := buildCommandPackage(t, commandFiles("1.0.0", lifecycle))
	f := newFakeSite()
	out := &outputOf{}
	o := f.options("shop", "shop")
	o.AllowCommands, o.Progress = true, out.progress
	o.Values = []ValuesFile{{Name: "secret.age", Data: []byte("web: {password: " + marker + ", cert: \"first\\nsecond-line-secret\\n\"}\n"), Secret: true}}
	o.Set = []string{"web.token=" + marker + "2"}
	_, err := Install(ctx, p, o)
	if err == nil {
		t.Fatal("install succeeded; the step exits 1")
	}
	got := out.text()
	if !strings.Contains(got, `"password":"<redacted>"`) && !strings.Contains(got, `"password":"\u003credacted\u003e"`) {
		t.Errorf("the command did not see the values, or they were not masked:\n%s", got)
	}
	if !strings.Contains(got, "the secret is <redacted>-x and <redacted>") || !strings.Contains(got, "multi <redacted> end") {
		t.Errorf("output not masked as expected:\n%s", got)
	}
	rec, _ := f.store().Latest(ctx, "shop", "shop")
	b, _ := json.Marshal(rec)
	for what, s := range map[string]string{"output": got, "events": strings.Join(out.all, "\n"), "error": err.Error(), "record": string(b)} {
		if strings.Contains(s, marker) || strings.Contains(s, "second-line-secret") {
			t.Errorf("the %s holds a secret value:\n%s", what, s)
		}
	}
}

func TestSecretStrings(t *testing.T) {
	got := secretStrings([]ValuesFile{
		{Data: []byte("a: {b: s3cret, n: 42, on: true, list: [x1, {c: deep}]}\n"), Secret: true},
		{Data: []byte("a: {plain: visible}\n")},
	}, []string{"web.k=v1,other=v2", "web.bad"})
	want := map[string]bool{"s3cret": true, "42": true, "x1": true, "deep": true, "v1,other=v2": true, "v1": true, "v2": true}
	if len(got) != len(want) {
		t.Errorf("secretStrings = %q, want %v", got, want)
	}
	for _, s := range got {
		if !want[s] {
			t.Errorf("unexpected secret %q (all: %q)", s, got)
		}
	}
	for i := 1; i < len(got); i++ {
		if len(got[i]) > len(got[i-1]) {
			t.Errorf("not longest first: %q", got)
		}
	}
}

func TestCheckCommands(t *testing.T) {
	run := phaseSteps{"preInstall", []release.Step{{Name: "a", Apply: "x"}, {Name: "b", Run: nil, Wait: "deployment/x"}}}
	if err := checkCommands(false, run); err != nil {
		t.Errorf("no commands: %v", err)
	}
}

// A line longer than maxLine is reported in pieces; a secret value
// where the line is cut is masked all the same, however the command's
// writes fall.
func TestLineWriterMasksAcrossCuts(t *testing.T) {
	const secret = "Straddling-Secret-Value-41c9"
	for _, at := range []int{maxLine - 5, maxLine - 1, maxLine, 2*maxLine - 10} {
		for _, chunk := range []int{1, 7, 1000, 1 << 20} {
			var got []string
			w := &lineWriter{emit: func(l string) { got = append(got, l) }, mask: maskWith([]string{secret}), hold: len(secret)}
			line := strings.Repeat("x", at) + secret + strings.Repeat("y", maxLine) + secret + "\n"
			for b := []byte(line); len(b) > 0; {
				n := min(chunk, len(b))
				w.Write(b[:n])
				b = b[n:]
			}
			w.flush()
			all := strings.Join(got, "")
			if strings.Contains(all, secret) || strings.Count(all, Redacted) != 2 {
				t.Errorf("secret at %d, writes of %d: %d pieces, %d masked, secret shown: %v", at, chunk, len(got), strings.Count(all, Redacted), strings.Contains(all, secret))
			}
		}
	}
}
