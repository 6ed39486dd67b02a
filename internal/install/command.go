package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/release"
)

// ErrCommandsNotAllowed: a lifecycle step would run a command on this
// machine and the operator did not allow commands.
var ErrCommandsNotAllowed = errors.New("commands not allowed")

// Step results recorded in [release.StepRun].
const (
	stepRunning   = "running"
	stepSucceeded = "succeeded"
	stepFailed    = "failed"
	stepTimedOut  = "timed out"
)

// Step kinds recorded in [release.StepRun].
const (
	stepKindRun = "run"
	stepKindJob = "job"
)

// CommandLine is how a command step is shown: the program and its
// arguments, quoted where needed; a shell script is marked as such.
func CommandLine(r *v1alpha1.RunStep) string {
	parts := []string{quoteArg(r.Command)}
	if r.Shell {
		parts = []string{"sh -c " + quoteArg(r.Command)}
	}
	for _, a := range r.Args {
		parts = append(parts, quoteArg(a))
	}
	return strings.Join(parts, " ")
}

func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`|&;<>()*?[]{}~#!") {
		return s
	}
	return strconv.Quote(s)
}

// checkCommands refuses the command steps of steps (each a phase name
// and its steps) unless allowed, naming every one of them.
func checkCommands(allowed bool, phases ...phaseSteps) error {
	if allowed {
		return nil
	}
	var found []string
	for _, ph := range phases {
		for _, st := range ph.steps {
			if st.Run != nil {
				found = append(found, fmt.Sprintf("%s step %q: %s", ph.name, st.Name, CommandLine(st.Run)))
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	what := "a command"
	if len(found) > 1 {
		what = fmt.Sprintf("%d commands", len(found))
	}
	return fmt.Errorf("%w: the package's lifecycle runs %s on this machine:\n  %s\nreview them (skiff inspect lists every step), then pass --allow-commands to run them",
		ErrCommandsNotAllowed, what, strings.Join(found, "\n  "))
}

// phaseSteps are the steps of one lifecycle phase.
type phaseSteps struct {
	name  string
	steps []release.Step
}

func toSteps(steps []v1alpha1.Step) []release.Step {
	out := make([]release.Step, len(steps))
	for i, st := range steps {
		out[i] = release.Step{Name: st.Name, Apply: st.Apply, Wait: st.Wait, Run: st.Run, Job: st.Job, Timeout: st.Timeout}
	}
	return out
}

// stepTimeout is a step's timeout, 5 minutes when it has none.
func stepTimeout(st release.Step) (time.Duration, error) {
	if st.Timeout == "" {
		return 5 * time.Minute, nil
	}
	d, err := time.ParseDuration(st.Timeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("lifecycle step %q: timeout %q is not a positive duration", st.Name, st.Timeout)
	}
	return d, nil
}

// workspace is the directory command steps work in: files/ holds the
// package's carried files, values.json the values of the operation. It
// is made on first use and removed when the session closes.
type workspace struct {
	dir    string
	files  string
	values string
}

func (s *session) workspace(ctx context.Context, p *Package) (*workspace, error) {
	if s.ws != nil {
		return s.ws, nil
	}
	dir, err := os.MkdirTemp("", "skiff-steps-")
	if err != nil {
		return nil, fmt.Errorf("lifecycle: making a work directory: %w", err)
	}
	ws := &workspace{dir: dir, files: filepath.Join(dir, "files")}
	s.ws = ws // removed by close, even if what follows fails
	if err := os.Mkdir(ws.files, 0o700); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	if p == nil {
		return ws, nil // uninstall: no archive, no files, no values
	}
	if _, err := ExtractFiles(ctx, p, ws.files, ExtractOptions{}); err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	if len(p.Description.Charts) > 0 {
		uv, err := splitValues(p.Description, s.o.Values, s.o.Set)
		if err != nil {
			return nil, err
		}
		all := map[string]any{}
		for _, c := range p.Description.Charts {
			v, err := chartValues(c, uv[c.Name])
			if err != nil {
				return nil, err
			}
			all[c.Name] = v
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(all); err != nil {
			return nil, fmt.Errorf("lifecycle: values: %w", err)
		}
		ws.values = filepath.Join(dir, "values.json")
		if err := os.WriteFile(ws.values, b.Bytes(), 0o600); err != nil {
			return nil, fmt.Errorf("lifecycle: %w", err)
		}
	}
	return ws, nil
}

func (ws *workspace) remove() {
	if ws != nil {
		os.RemoveAll(ws.dir)
	}
}

// stepEnv is the environment of a command step: skiff's own minus its
// SKIFF_ variables (a passphrase among them), then the deployment's
// variables, then the step's.
func (s *session) stepEnv(ws *workspace, phase string, st release.Step, rec *release.Record) []string {
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(strings.ToUpper(k), "SKIFF_") {
			env = append(env, kv)
		}
	}
	set := func(k, v string) { env = append(env, k+"="+v) }
	if kc := s.o.Cluster.Kubeconfig; kc != "" {
		if abs, err := filepath.Abs(kc); err == nil {
			kc = abs
		}
		set("KUBECONFIG", kc)
	}
	if s.o.Cluster.Context != "" {
		set("SKIFF_KUBE_CONTEXT", s.o.Cluster.Context)
	}
	set("SKIFF_DEPLOYMENT", rec.Deployment)
	set("SKIFF_NAMESPACE", rec.Namespace)
	set("SKIFF_PACKAGE", rec.Package.Name)
	set("SKIFF_VERSION", rec.Package.Version)
	set("SKIFF_REVISION", strconv.Itoa(rec.Revision))
	set("SKIFF_REGISTRY", rec.Registry)
	set("SKIFF_OPERATION", operation(rec))
	set("SKIFF_PHASE", phase)
	set("SKIFF_STEP", st.Name)
	set("SKIFF_FILES", ws.files)
	if ws.values != "" {
		set("SKIFF_VALUES", ws.values)
	}
	for _, k := range sortedKeys(st.Run.Env) {
		set(k, st.Run.Env[k])
	}
	return env
}

// operation names what rec is being made by.
func operation(rec *release.Record) string {
	switch rec.Status {
	case release.StatusPendingInstall:
		return "install"
	case release.StatusPendingUpgrade:
		return "upgrade"
	}
	return "uninstall"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// runCommand runs a command step on this machine: in the workspace's
// files directory, with the step's timeout, stdin empty, stdout and stderr
// reported line by line with secret values masked. The step is recorded
// in rec before it starts and when it ends; its output never is.
func (s *session) runCommand(ctx context.Context, p *Package, phase string, st release.Step, rec *release.Record) error {
	r := st.Run
	if !s.o.AllowCommands {
		return checkCommands(false, phaseSteps{phase, []release.Step{st}})
	}
	timeout, err := stepTimeout(st)
	if err != nil {
		return err
	}
	ws, err := s.workspace(ctx, p)
	if err != nil {
		return fmt.Errorf("lifecycle step %q: %w", st.Name, err)
	}
	dir := ws.files
	if r.Dir != "" {
		if !filepath.IsLocal(r.Dir) {
			return fmt.Errorf("lifecycle step %q: dir %q is not inside the package's files", st.Name, r.Dir)
		}
		dir = filepath.Join(ws.files, filepath.FromSlash(r.Dir))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("lifecycle step %q: %w", st.Name, err)
		}
	}
	name, args := r.Command, r.Args
	switch {
	case r.Shell:
		name, args = "/bin/sh", append([]string{"-c", r.Command, "sh"}, r.Args...)
	case strings.Contains(r.Command, "/") && !filepath.IsAbs(r.Command):
		rel := filepath.Join(filepath.FromSlash(r.Dir), filepath.FromSlash(r.Command))
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("lifecycle step %q: command %q is not inside the package's files", st.Name, r.Command)
		}
		name = filepath.Join(ws.files, rel)
	}
	line := CommandLine(r)
	run := release.StepRun{Phase: phase, Name: st.Name, Kind: stepKindRun, Command: line, Result: stepRunning, ExitCode: -1, Started: time.Now().UTC()}
	rec.Steps = append(rec.Steps, run)
	i := len(rec.Steps) - 1
	if err := s.save(ctx, rec); err != nil {
		return err
	}
	s.o.emit(Event{Step: "run", Component: st.Name, Message: fmt.Sprintf("step %s: running %s", st.Name, line)})

	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, name, args...)
	cmd.Dir = dir
	cmd.Env = s.stepEnv(ws, phase, st, rec)
	secrets := secretStrings(s.o.Values, s.o.Set)
	out := &lineWriter{emit: func(l string) {
		s.o.emit(Event{Step: "output", Component: st.Name, Message: "  " + st.Name + ": " + l})
	}, mask: maskWith(secrets)}
	if len(secrets) > 0 {
		out.hold = len(secrets[0]) // longest first
	}
	cmd.Stdout, cmd.Stderr = out, out
	killGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	out.flush()
	took := time.Since(start)

	rs := &rec.Steps[i]
	rs.Duration = took.Round(time.Millisecond).String()
	rs.ExitCode = -1
	if cmd.ProcessState != nil {
		rs.ExitCode = cmd.ProcessState.ExitCode()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		rs.Result = stepSucceeded
	case cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		rs.Result = stepTimedOut
		err = fmt.Errorf("lifecycle step %q: %s did not finish within its timeout of %s and was killed: raise the step's timeout in skiff.yaml if it is just slow", st.Name, line, timeout)
	case errors.As(err, &ee):
		rs.Result = stepFailed
		err = fmt.Errorf("lifecycle step %q: %s exited with code %d after %s (its output is above)", st.Name, line, rs.ExitCode, rs.Duration)
	default:
		rs.Result = stepFailed
		err = fmt.Errorf("lifecycle step %q: running %s: %w", st.Name, line, err)
	}
	if serr := s.save(context.WithoutCancel(ctx), rec); serr != nil && err == nil {
		err = serr
	}
	return err
}

// masker returns a function that replaces every secret value of the
// operation (values of encrypted files, --set values) in a line of output
// with [Redacted].
func (s *session) masker() func(string) string {
	return maskWith(secretStrings(s.o.Values, s.o.Set))
}

// maskWith replaces every one of secrets (longest first) in a line with
// [Redacted].
func maskWith(secrets []string) func(string) string {
	return func(l string) string {
		for _, sec := range secrets {
			l = strings.ReplaceAll(l, sec, Redacted)
		}
		return l
	}
}

// secretStrings lists the secret values given to an operation, each
// line of a multi-line value apart, longest first: every leaf of the
// decrypted values files (booleans aside) and every --set value.
func secretStrings(files []ValuesFile, sets []string) []string {
	seen := map[string]bool{}
	add := func(v string) {
		for _, l := range strings.Split(v, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				seen[l] = true
			}
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		case nil, bool:
		case string:
			add(v)
		default:
			add(fmt.Sprint(v))
		}
	}
	for _, f := range files {
		if !f.Secret {
			continue
		}
		var v any
		if yaml.Unmarshal(f.Data, &v) == nil {
			walk(v)
		}
	}
	for _, kv := range sets {
		_, val, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		add(val)
		if _, rest, ok := cut(kv); ok {
			if m, err := chart.MergeValues(nil, nil, []string{rest}, nil); err == nil {
				walk(m)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
		// as it is spelled in a JSON string (SKIFF_VALUES)
		if j := jsonString(k); j != k {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// jsonString is s encoded as a JSON string, without the quotes.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	j := strings.TrimSpace(b.String())
	return j[1 : len(j)-1]
}

// maxLine bounds one reported line of command output; longer lines are
// cut into pieces.
const maxLine = 16 << 10

// lineWriter reports what a command writes, a line at a time, masked.
// stdout and stderr share one, so lines keep their order.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	emit func(string)
	mask func(string) string
	// hold is the length of the longest secret value mask replaces.
	hold int
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	for {
		data := w.buf.Bytes()
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) < maxLine+w.hold {
				return len(b), nil
			}
			// Cut a long line only where no secret value can straddle
			// the cut: mask it first (every value starting before
			// maxLine is whole by now) and keep the last hold bytes,
			// which may begin a value still to come.
			m := w.mask(string(data))
			cut := min(maxLine, len(m)-w.hold)
			w.buf.Reset()
			if cut <= 0 {
				w.buf.WriteString(m)
				return len(b), nil
			}
			w.emit(strings.TrimRight(m[:cut], "\r"))
			w.buf.WriteString(m[cut:])
			continue
		}
		w.send(string(data[:i]))
		w.buf.Next(i + 1)
	}
}

func (w *lineWriter) send(l string) {
	w.emit(w.mask(strings.TrimRight(l, "\r")))
}

// flush reports a last line without a newline.
func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.send(w.buf.String())
		w.buf.Reset()
	}
}

// PlannedStep is a lifecycle step as inspect and diff show it.
type PlannedStep struct {
	Phase string `json:"phase"`
	Name  string `json:"name"`
	// Kind is "apply", "wait", "run" (a command on the operator's
	// machine) or "job".
	Kind string `json:"kind"`
	// What is the manifests component, the object, the command line, or
	// the Job's image and command.
	What    string `json:"what"`
	Timeout string `json:"timeout,omitempty"`
}

// Phases of the lifecycle, in the order inspect lists them.
var phases = []string{"preInstall", "postInstall", "preUpgrade", "postUpgrade", "preDelete"}

// LifecycleSteps lists the lifecycle steps of d, of the phases named (all
// when none), in phase order.
func LifecycleSteps(d *bundle.Description, only ...string) []PlannedStep {
	if d.Spec == nil || d.Spec.Lifecycle == nil {
		return nil
	}
	l := d.Spec.Lifecycle
	lists := map[string][]v1alpha1.Step{"preInstall": l.PreInstall, "postInstall": l.PostInstall, "preUpgrade": l.PreUpgrade, "postUpgrade": l.PostUpgrade, "preDelete": l.PreDelete}
	var out []PlannedStep
	for _, ph := range phases {
		if len(only) > 0 && !slices.Contains(only, ph) {
			continue
		}
		for _, st := range lists[ph] {
			ps := PlannedStep{Phase: ph, Name: st.Name, Timeout: st.Timeout}
			switch {
			case st.Apply != "":
				ps.Kind, ps.What = "apply", st.Apply
			case st.Wait != "":
				ps.Kind, ps.What = "wait", st.Wait
			case st.Run != nil:
				ps.Kind, ps.What = stepKindRun, CommandLine(st.Run)
			case st.Job != nil:
				ps.Kind, ps.What = stepKindJob, jobLine(st.Job)
			}
			out = append(out, ps)
		}
	}
	return out
}

// jobLine shows a Job step: its image, then its command and arguments.
func jobLine(j *v1alpha1.JobStep) string {
	parts := []string{j.Image}
	for _, a := range append(slices.Clone(j.Command), j.Args...) {
		parts = append(parts, quoteArg(a))
	}
	return strings.Join(parts, " ")
}
