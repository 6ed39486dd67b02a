// Package release records what skiff installed: one Record per revision of
// a deployment, kept by a Driver (in memory, or as Secrets in the
// cluster), and a Store that adds history rules on top. It does not talk
// to the cluster itself.
package release

import (
	"fmt"
	"time"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

// Status is the state of one revision.
type Status string

// Revision states. A Pending* status means an operation is in progress
// (or died); Superseded marks a deployed revision replaced by a newer one.
const (
	StatusPendingInstall  Status = "pending-install"
	StatusPendingUpgrade  Status = "pending-upgrade"
	StatusPendingRollback Status = "pending-rollback"
	StatusDeployed        Status = "deployed"
	StatusSuperseded      Status = "superseded"
	StatusFailed          Status = "failed"
	StatusUninstalling    Status = "uninstalling"
	StatusUninstalled     Status = "uninstalled"
)

var statuses = []Status{
	StatusPendingInstall, StatusPendingUpgrade, StatusPendingRollback, StatusDeployed,
	StatusSuperseded, StatusFailed, StatusUninstalling, StatusUninstalled,
}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	for _, k := range statuses {
		if s == k {
			return true
		}
	}
	return false
}

// Pending reports whether s marks an operation in progress.
func (s Status) Pending() bool {
	return s == StatusPendingInstall || s == StatusPendingUpgrade || s == StatusPendingRollback || s == StatusUninstalling
}

// Component kinds.
const (
	KindChart     = "chart"
	KindManifests = "manifests"
)

// Record is one revision of a deployment: which package was installed,
// how, and what it created.
type Record struct {
	// Deployment names the installed instance of a package (DNS-1123 label).
	Deployment string `json:"deployment"`
	Namespace  string `json:"namespace"`
	// Revision counts from 1 and grows with every install, upgrade and
	// rollback of the deployment.
	Revision int     `json:"revision"`
	Status   Status  `json:"status"`
	Package  Package `json:"package"`
	// Components are in install order.
	Components []Component `json:"components,omitempty"`
	// Registry is the --registry (HOST[:PORT][/PREFIX]) the images were
	// loaded into, Flatten its --flatten.
	Registry string `json:"registry,omitempty"`
	Flatten  bool   `json:"flatten,omitempty"`
	// Images maps each source image reference to the reference it was
	// relocated to in the target registry.
	Images map[string]string `json:"images,omitempty"`
	// Values are the user-supplied values of this revision. Callers must
	// redact secret values before storing them: records are readable by
	// anyone who can read Secrets in the namespace.
	Values map[string]any `json:"values,omitempty"`
	// ValueSources name where the user values came from, in order:
	// "-f NAME", "-f NAME (encrypted)", "--set CHART.PATH" (values given
	// with --set are recorded in Values as their key paths only).
	ValueSources []string `json:"valueSources,omitempty"`
	// SealedValues are the encrypted values files as given (age
	// ciphertext): only a holder of the identity reads them back.
	SealedValues []SealedValues `json:"sealedValues,omitempty"`
	// Dependencies are the deployments this one required, as
	// "namespace/deployment".
	Dependencies []string `json:"dependencies,omitempty"`
	// Namespaces are the namespaces the deployment created, oldest first;
	// uninstall removes each once nothing else is in it.
	Namespaces []string `json:"namespaces,omitempty"`
	// PreDelete are the package's preDelete lifecycle steps.
	PreDelete []Step `json:"preDelete,omitempty"`
	// Steps are the command and Job lifecycle steps this operation ran,
	// in order: what ran and how it ended, never its output.
	Steps       []StepRun `json:"steps,omitempty"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`

	// version is the storage version (a Secret's resourceVersion) the
	// record was read at; Update fails with ErrConflict when it changed.
	version string
}

// SealedValues is one encrypted values file.
type SealedValues struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// Package identifies the installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Root is the digest of the package's root manifest.
	Root string `json:"root,omitempty"`
}

// Component is one installed chart or manifests component.
type Component struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"` // KindChart or KindManifests
	Namespace string `json:"namespace,omitempty"`
	// HelmRelease and HelmRevision locate the Helm release of a chart.
	HelmRelease  string `json:"helmRelease,omitempty"`
	HelmRevision int    `json:"helmRevision,omitempty"`
	// Objects are the objects applied, in apply order.
	Objects []Object `json:"objects,omitempty"`
	// Manifest is the applied (relocated) YAML of a manifests component,
	// kept so rollback works without the package archive.
	Manifest string `json:"manifest,omitempty"`
	// Deferred marks a lifecycle component recorded but not applied: it is
	// applied by a step of a later operation (preDelete at uninstall).
	Deferred bool `json:"deferred,omitempty"`
}

// Step is a lifecycle step kept in a record for a later operation
// (the preDelete steps run by uninstall).
type Step struct {
	Name    string            `json:"name"`
	Apply   string            `json:"apply,omitempty"`
	Wait    string            `json:"wait,omitempty"`
	Run     *v1alpha1.RunStep `json:"run,omitempty"`
	Job     *v1alpha1.JobStep `json:"job,omitempty"`
	Timeout string            `json:"timeout,omitempty"`
}

// StepRun is one command or Job step an operation ran.
type StepRun struct {
	// Phase is the lifecycle list the step is in (preInstall, ...).
	Phase string `json:"phase"`
	Name  string `json:"name"`
	// Kind is "run" (a command on the operator's machine) or "job".
	Kind string `json:"kind"`
	// Command is what ran: the command line of a run step, the image
	// (relocated) of a Job.
	Command string `json:"command"`
	// Result is "running" (the operation died during the step),
	// "succeeded", "failed" or "timed out".
	Result string `json:"result"`
	// ExitCode is a command's exit status (-1 when it did not exit, such
	// as killed at its timeout); 0 for Jobs.
	ExitCode int `json:"exitCode"`
	// Job is namespace/name of a Job kept after it failed, for
	// inspection; uninstall removes it.
	Job     string    `json:"job,omitempty"`
	Started time.Time `json:"started"`
	// Duration is how long it ran, as a Go duration ("1.52s").
	Duration string `json:"duration,omitempty"`
}

// Object identifies one object in the cluster; it has the fields of
// kube.ObjectRef, so the two convert directly.
type Object struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// Key returns "namespace/deployment", the record's deployment identity.
func (r *Record) Key() string { return r.Namespace + "/" + r.Deployment }

func (r *Record) String() string {
	return fmt.Sprintf("deployment %s revision %d", r.Key(), r.Revision)
}

// Clone returns a deep copy of r (Values are copied through JSON-like
// maps and slices; other value types are shared).
func (r *Record) Clone() *Record {
	c := *r
	c.Components = make([]Component, len(r.Components))
	for i, comp := range r.Components {
		comp.Objects = append([]Object(nil), comp.Objects...)
		c.Components[i] = comp
	}
	if r.Components == nil {
		c.Components = nil
	}
	if r.Images != nil {
		c.Images = make(map[string]string, len(r.Images))
		for k, v := range r.Images {
			c.Images[k] = v
		}
	}
	c.Values, _ = cloneValue(r.Values).(map[string]any)
	c.ValueSources = append([]string(nil), r.ValueSources...)
	c.SealedValues = append([]SealedValues(nil), r.SealedValues...)
	c.Dependencies = append([]string(nil), r.Dependencies...)
	c.PreDelete = append([]Step(nil), r.PreDelete...)
	c.Steps = append([]StepRun(nil), r.Steps...)
	c.Namespaces = append([]string(nil), r.Namespaces...)
	return &c
}

func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return map[string]any(nil)
		}
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = cloneValue(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = cloneValue(e)
		}
		return s
	}
	return v
}
