package install

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffhq/skiff/internal/images"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// Annotations on the Job of a lifecycle step.
const (
	annotationStep  = "skiff.dev/step"
	annotationPhase = "skiff.dev/phase"
)

// jobPollInterval is how often a Job step's Job is read.
var jobPollInterval = time.Second

// logTailLines bounds the pod log lines a failed Job step reports.
const logTailLines = 20

// jobName is the name of a step's Job: the deployment and the step,
// made a DNS label, with a hash of both (names stay apart however they
// are cut).
func jobName(deployment, phase, step string) string {
	sum := sha256.Sum256([]byte(deployment + "\x00" + phase + "\x00" + step))
	base := strings.Trim(labelOf(deployment+"-"+step), "-")
	if len(base) > 56 {
		base = strings.TrimRight(base[:56], "-")
	}
	return base + "-" + hex.EncodeToString(sum[:])[:6]
}

// labelOf lowercases s and replaces what a DNS label cannot hold with '-'.
func labelOf(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	return b.String()
}

var jobGVK = schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}

// runJob runs a Job step: a Job from the step's image, relocated to the
// site registry, run to completion within the step's timeout. A Job this
// deployment left from an earlier run of the step is replaced; one
// anyone else owns is refused. A finished Job is deleted with its pods;
// a failed one is kept for inspection (recorded, and removed by the next
// run of the step or by uninstall), and the error carries the last lines
// of its pod's log.
func (s *session) runJob(ctx context.Context, phase string, st release.Step, rec *release.Record) error {
	j := st.Job
	timeout, err := stepTimeout(st)
	if err != nil {
		return err
	}
	src, err := images.Normalize(j.Image)
	if err != nil {
		return fmt.Errorf("lifecycle step %q: image %q: %w", st.Name, j.Image, err)
	}
	target, ok := rec.Images[src]
	if !ok {
		return fmt.Errorf("lifecycle step %q: image %s is not carried by the package: rebuild it with this skiff, which carries the images of Job steps", st.Name, src)
	}
	ns := j.Namespace
	if ns == "" {
		ns = rec.Namespace
	}
	name := jobName(rec.Deployment, phase, st.Name)
	ref := kube.ObjectRef{Group: jobGVK.Group, Version: jobGVK.Version, Kind: jobGVK.Kind, Namespace: ns, Name: name}
	if err := s.replaceJob(ctx, ref); err != nil {
		return fmt.Errorf("lifecycle step %q: %w", st.Name, err)
	}

	run := release.StepRun{Phase: phase, Name: st.Name, Kind: stepKindJob, Command: jobLine(j) + " (as " + target + ")", Result: stepRunning, Job: ns + "/" + name, Started: time.Now().UTC()}
	rec.Steps = append(rec.Steps, run)
	i := len(rec.Steps) - 1
	if err := s.save(ctx, rec); err != nil {
		return err
	}
	s.o.emit(Event{Step: "job", Component: st.Name, Message: fmt.Sprintf("step %s: running Job %s/%s (%s)", st.Name, ns, name, target)})
	if err := s.ensureNamespaces(ctx, []string{ns}); err != nil {
		return err
	}
	job := s.jobObject(ref, phase, st, rec, target, timeout)
	start := time.Now()
	if _, err := s.kc.Apply(ctx, []*unstructured.Unstructured{job}, kube.ApplyOptions{FieldManager: FieldManager, Namespace: ns, Force: true, Labels: s.ownerLabels()}); err != nil {
		rec.Steps[i].Result, rec.Steps[i].Job = stepFailed, ""
		_ = s.save(context.WithoutCancel(ctx), rec)
		return fmt.Errorf("lifecycle step %q: creating Job %s/%s: %w", st.Name, ns, name, err)
	}
	done, why, err := s.awaitJob(ctx, ref, timeout)
	rs := &rec.Steps[i]
	rs.Duration = time.Since(start).Round(time.Millisecond).String()
	rs.ExitCode = 0
	switch {
	case err != nil:
		rs.Result = stepFailed
	case done:
		rs.Result = stepSucceeded
		if derr := s.kc.Delete(ctx, []kube.ObjectRef{ref}, s.deleteOptions()); derr != nil {
			err = fmt.Errorf("lifecycle step %q: the Job succeeded but deleting it failed: %w", st.Name, derr)
		} else {
			rs.Job = ""
		}
	case why == "":
		rs.Result = stepTimedOut
		err = fmt.Errorf("lifecycle step %q: Job %s/%s did not complete within its timeout of %s%s\nthe Job is kept for inspection (kubectl describe job -n %s %s); the step's next run or uninstall removes it",
			st.Name, ns, name, timeout, s.jobLogs(ctx, ns, name), ns, name)
	default:
		rs.Result = stepFailed
		err = fmt.Errorf("lifecycle step %q: Job %s/%s failed: %s%s\nthe Job is kept for inspection (kubectl describe job -n %s %s); the step's next run or uninstall removes it",
			st.Name, ns, name, why, s.jobLogs(ctx, ns, name), ns, name)
	}
	if serr := s.save(context.WithoutCancel(ctx), rec); serr != nil && err == nil {
		err = serr
	}
	return err
}

// replaceJob removes the Job at ref when this deployment made it (an
// earlier run of the step), and refuses one someone else made.
func (s *session) replaceJob(ctx context.Context, ref kube.ObjectRef) error {
	obj, err := s.kc.Get(ctx, ref)
	if errors.Is(err, kube.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if owner := s.otherOwner(obj); owner != "" && !s.o.TakeOwnership {
		return fmt.Errorf("%w: Job %s %s: remove it, or pass --take-ownership to replace it", ErrOwned, ref, owner)
	}
	return s.kc.Delete(ctx, []kube.ObjectRef{ref}, s.deleteOptions())
}

// jobObject is the Job of a step: one container running the relocated
// image with the step's command, arguments and environment plus the
// deployment's variables, never restarted in place, retried Retries
// times, stopped by the cluster at the timeout.
func (s *session) jobObject(ref kube.ObjectRef, phase string, st release.Step, rec *release.Record, image string, timeout time.Duration) *unstructured.Unstructured {
	j := st.Job
	var env []any
	add := func(k, v string) { env = append(env, map[string]any{"name": k, "value": v}) }
	add("SKIFF_DEPLOYMENT", rec.Deployment)
	add("SKIFF_NAMESPACE", rec.Namespace)
	add("SKIFF_PACKAGE", rec.Package.Name)
	add("SKIFF_VERSION", rec.Package.Version)
	add("SKIFF_REVISION", strconv.Itoa(rec.Revision))
	add("SKIFF_REGISTRY", rec.Registry)
	add("SKIFF_OPERATION", operation(rec))
	add("SKIFF_PHASE", phase)
	add("SKIFF_STEP", st.Name)
	for _, k := range sortedKeys(j.Env) {
		add(k, j.Env[k])
	}
	container := map[string]any{"name": "step", "image": image, "env": env}
	if len(j.Command) > 0 {
		container["command"] = strings2any(j.Command)
	}
	if len(j.Args) > 0 {
		container["args"] = strings2any(j.Args)
	}
	pod := map[string]any{"restartPolicy": "Never", "containers": []any{container}}
	if j.ServiceAccount != "" {
		pod["serviceAccountName"] = j.ServiceAccount
	}
	labels := map[string]any{}
	for k, v := range s.ownerLabels() {
		labels[k] = v
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "batch/v1",
		"kind":       "Job",
		"metadata": map[string]any{
			"name": ref.Name, "namespace": ref.Namespace,
			"annotations": map[string]any{annotationStep: st.Name, annotationPhase: phase},
		},
		"spec": map[string]any{
			"backoffLimit":          int64(j.Retries),
			"activeDeadlineSeconds": int64(math.Ceil(timeout.Seconds())),
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec":     pod,
			},
		},
	}}
}

func strings2any(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// awaitJob polls the Job at ref until it completes (done), fails (why
// says how) or timeout passes (neither).
func (s *session) awaitJob(ctx context.Context, ref kube.ObjectRef, timeout time.Duration) (done bool, why string, err error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(jobPollInterval)
	defer tick.Stop()
	for {
		obj, err := s.kc.Get(wctx, ref)
		switch {
		case err == nil:
			if _, ok := jobCondition(obj, "Complete"); ok {
				return true, "", nil
			}
			if c, ok := jobCondition(obj, "Failed"); ok {
				return false, c, nil
			}
		case errors.Is(err, kube.ErrNotFound):
			return false, "", fmt.Errorf("Job %s was deleted while the step waited for it", ref)
		}
		// other read errors (the deadline itself among them) are retried
		// until the timeout
		select {
		case <-wctx.Done():
			if err := ctx.Err(); err != nil {
				return false, "", err
			}
			return false, "", nil
		case <-tick.C:
		}
	}
}

// jobCondition reports whether the Job's condition typ is true, with
// its reason and message.
func jobCondition(obj *unstructured.Unstructured, typ string) (string, bool) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ && m["status"] == "True" {
			msg := fmt.Sprint(m["reason"])
			if s, _ := m["message"].(string); s != "" {
				msg += ": " + s
			}
			return msg, true
		}
	}
	return "", false
}

// jobLogs is the tail of the log of the Job's newest pod, for an error
// ("" when there is no pod or no log), secret values masked.
func (s *session) jobLogs(ctx context.Context, ns, name string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	pods, err := s.kc.List(ctx, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, ns, "batch.kubernetes.io/job-name="+name)
	if err != nil || len(pods) == 0 {
		return ""
	}
	slices.SortFunc(pods, func(a, b unstructured.Unstructured) int {
		return a.GetCreationTimestamp().Compare(b.GetCreationTimestamp().Time)
	})
	pod := pods[len(pods)-1].GetName()
	b, err := s.kc.PodLogs(ctx, ns, pod, "", logTailLines)
	if err != nil {
		return fmt.Sprintf("\n(the log of pod %s cannot be read: %v)", pod, err)
	}
	// The error reaches the terminal and the release record: mask the
	// operation's secret values as a command step's output is.
	tail := s.masker()(strings.TrimRight(string(b), "\n"))
	if tail == "" {
		return fmt.Sprintf("\npod %s logged nothing", pod)
	}
	if len(tail) > 4096 {
		tail = "..." + tail[len(tail)-4096:]
	}
	return fmt.Sprintf("\nlast lines of pod %s:\n  %s", pod, strings.ReplaceAll(tail, "\n", "\n  "))
}

// removeStepJobs deletes the Jobs that failed steps of recs kept, those
// still this deployment's.
func (s *session) removeStepJobs(ctx context.Context, recs ...*release.Record) error {
	var refs []kube.ObjectRef
	for _, r := range recs {
		if r == nil {
			continue
		}
		for _, st := range r.Steps {
			ns, name, ok := strings.Cut(st.Job, "/")
			if !ok {
				continue
			}
			ref := kube.ObjectRef{Group: jobGVK.Group, Version: jobGVK.Version, Kind: jobGVK.Kind, Namespace: ns, Name: name}
			obj, err := s.kc.Get(ctx, ref)
			if err != nil || s.otherOwner(obj) != "" || slices.Contains(refs, ref) {
				continue
			}
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	s.o.emit(Event{Step: "delete", Message: fmt.Sprintf("removing %d Jobs of failed lifecycle steps", len(refs))})
	return s.kc.Delete(ctx, refs, s.deleteOptions())
}
