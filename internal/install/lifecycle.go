package install

import (
	"context"
	"fmt"

	"github.com/skiffhq/skiff/api/v1alpha1"
	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/release"
)

// lifecycle is what a package's lifecycle steps mean for one operation.
type lifecycle struct {
	pre, post phaseSteps
	preDelete []v1alpha1.Step
	// components are the manifest sets named by any step's apply: they
	// are applied only by their steps, never by the regular flow.
	components map[string]bool
	// now are the components a step of this operation applies.
	now map[string]bool
}

// lifecycleOf picks the steps of an install (upgrade false) or upgrade.
func lifecycleOf(d *bundle.Description, upgrade bool) (*lifecycle, error) {
	lc := &lifecycle{components: map[string]bool{}, now: map[string]bool{}}
	if d.Spec == nil || d.Spec.Lifecycle == nil {
		return lc, nil
	}
	l := d.Spec.Lifecycle
	lc.pre, lc.post = phaseSteps{"preInstall", toSteps(l.PreInstall)}, phaseSteps{"postInstall", toSteps(l.PostInstall)}
	if upgrade {
		lc.pre, lc.post = phaseSteps{"preUpgrade", toSteps(l.PreUpgrade)}, phaseSteps{"postUpgrade", toSteps(l.PostUpgrade)}
	}
	lc.preDelete = l.PreDelete
	sets := map[string]bool{}
	for _, ms := range d.Manifests {
		sets[ms.Name] = true
	}
	for _, steps := range [][]v1alpha1.Step{l.PreInstall, l.PostInstall, l.PreUpgrade, l.PostUpgrade, l.PreDelete} {
		for _, st := range steps {
			if st.Apply == "" {
				continue
			}
			if !sets[st.Apply] {
				return nil, fmt.Errorf("lifecycle step %q applies %q, which is no manifests component of the package: fix skiff.yaml and rebuild", st.Name, st.Apply)
			}
			lc.components[st.Apply] = true
		}
	}
	for _, st := range append(append([]release.Step(nil), lc.pre.steps...), lc.post.steps...) {
		if st.Apply != "" {
			lc.now[st.Apply] = true
		}
	}
	return lc, nil
}

// runSteps runs the steps of a phase in order: apply a manifest set,
// wait for an object, run a command on this machine or a Job.
func (s *session) runSteps(ctx context.Context, p *Package, ph phaseSteps, rec, prev *release.Record, post func([]byte) ([]byte, error)) error {
	for _, st := range ph.steps {
		s.o.emit(Event{Step: "lifecycle", Component: st.Apply, Message: "step " + st.Name})
		switch {
		case st.Apply != "":
			ms, ok := manifestSet(p.Description, st.Apply)
			if !ok {
				return fmt.Errorf("lifecycle step %q: no manifests component %q", st.Name, st.Apply)
			}
			if err := s.deployManifestSet(ctx, p, ms, rec, prev, post); err != nil {
				return fmt.Errorf("lifecycle step %q: %w", st.Name, err)
			}
		case st.Wait != "":
			if err := s.waitStep(ctx, st); err != nil {
				return err
			}
		case st.Run != nil:
			if err := s.runCommand(ctx, p, ph.name, st, rec); err != nil {
				return err
			}
		case st.Job != nil:
			if err := s.runJob(ctx, ph.name, st, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitStep waits for the object a step names.
func (s *session) waitStep(ctx context.Context, st release.Step) error {
	timeout, err := stepTimeout(st)
	if err != nil {
		return err
	}
	ref, err := s.kc.ResolveRef(ctx, st.Wait, s.o.Namespace)
	if err != nil {
		return fmt.Errorf("lifecycle step %q: %w", st.Name, err)
	}
	if err := s.kc.Wait(ctx, []kube.ObjectRef{ref}, kube.WaitOptions{Timeout: timeout}); err != nil {
		return fmt.Errorf("lifecycle step %q: %w", st.Name, err)
	}
	return nil
}

// recordLifecycle keeps lifecycle components in the record: those applied
// by earlier operations stay recorded (so uninstall removes them and the
// upgrade does not prune them), and those only preDelete applies are
// recorded relocated but not applied, with the preDelete steps.
func (s *session) recordLifecycle(ctx context.Context, p *Package, lc *lifecycle, rec, prev *release.Record, post func([]byte) ([]byte, error)) error {
	for name := range lc.components {
		if lc.now[name] || previous(rec, name) != nil {
			continue
		}
		if c := previous(prev, name); c != nil && !c.Deferred {
			rec.Components = append(rec.Components, *c)
			continue
		}
		ms, _ := manifestSet(p.Description, name)
		z, err := s.layer(ctx, p, ms.Digest, ms.Size, bundle.MediaTypeManifests)
		if err != nil {
			return err
		}
		y, err := unzstd(z)
		if err != nil {
			return err
		}
		if y, err = post(y); err != nil {
			return fmt.Errorf("manifests %s: %w", name, err)
		}
		ns := ms.Namespace
		if ns == "" {
			ns = s.o.Namespace
		}
		rec.Components = append(rec.Components, release.Component{Name: name, Kind: kindManifests, Namespace: ns, Manifest: string(y), Deferred: true})
	}
	rec.PreDelete = nil
	rec.PreDelete = toSteps(lc.preDelete)
	if len(rec.PreDelete) == 0 {
		rec.PreDelete = nil
	}
	return s.save(ctx, rec)
}

// runPreDelete runs a record's preDelete steps before uninstall removes
// anything. Components it applies are marked applied in rec's copy so
// that the uninstall deletes them afterwards.
func (s *session) runPreDelete(ctx context.Context, rec *release.Record) error {
	if err := checkCommands(s.o.AllowCommands, phaseSteps{"preDelete", rec.PreDelete}); err != nil {
		return err
	}
	for _, st := range rec.PreDelete {
		s.o.emit(Event{Step: "lifecycle", Component: st.Apply, Message: "step " + st.Name})
		if st.Run != nil {
			if err := s.runCommand(ctx, nil, "preDelete", st, rec); err != nil {
				return err
			}
			continue
		}
		if st.Job != nil {
			if err := s.runJob(ctx, "preDelete", st, rec); err != nil {
				return err
			}
			continue
		}
		if st.Apply != "" {
			i := -1
			for j := range rec.Components {
				if rec.Components[j].Name == st.Apply && rec.Components[j].Kind == kindManifests {
					i = j
				}
			}
			if i < 0 {
				return fmt.Errorf("preDelete step %q: component %q is not in the record", st.Name, st.Apply)
			}
			c := &rec.Components[i]
			c.Deferred = false
			if err := s.applyManifests(ctx, c, nil, nil); err != nil {
				return fmt.Errorf("preDelete step %q: %w", st.Name, err)
			}
			continue
		}
		if err := s.waitStep(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

func manifestSet(d *bundle.Description, name string) (bundle.ManifestSet, bool) {
	for _, ms := range d.Manifests {
		if ms.Name == name {
			return ms, true
		}
	}
	return bundle.ManifestSet{}, false
}
