// Package v1alpha1 holds the public, versioned types of the Skiff package
// spec (skiff.yaml). It does no I/O; loading, defaulting and validation live
// in internal/spec.
package v1alpha1

// APIVersion and Kind identify a v1alpha1 package spec.
const (
	APIVersion = "skiff.dev/v1alpha1"
	Kind       = "Package"
)

// Package is the root of skiff.yaml.
type Package struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	// KubeVersion is the Kubernetes version the package targets (1.35 or
	// 1.35.4): charts are rendered for it at build and lint, and install
	// says when the cluster's version differs. Empty means Helm's default.
	KubeVersion string `json:"kubeVersion,omitempty"`
	// Platforms lists the os/arch[/variant] image platforms to keep from
	// multi-arch images. Empty means linux/amd64.
	Platforms []string `json:"platforms,omitempty"`
	// Images are image references carried in addition to those discovered
	// in charts and manifests.
	Images []string `json:"images,omitempty"`
	// ImageSignatures name cosign public keys that images must be signed
	// with: build verifies each matching image's keyed cosign signature
	// and refuses unsigned or mis-signed images.
	ImageSignatures []ImageSignature `json:"imageSignatures,omitempty"`
	Charts          []Chart          `json:"charts,omitempty"`
	Manifests       []Manifest       `json:"manifests,omitempty"`
	Files           []File           `json:"files,omitempty"`
	Dependencies    []Dependency     `json:"dependencies,omitempty"`
	// Lifecycle steps run around install, upgrade and uninstall.
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
	// NetworkPolicy, when enabled, installs default-deny policies plus the
	// declared allowances with the package.
	NetworkPolicy *NetworkPolicy `json:"networkPolicy,omitempty"`
}

// ImageSignature requires the images of one repository, or of every
// repository of one registry, to carry a cosign signature made with a
// key. Exactly one of Image or Registry is set.
type ImageSignature struct {
	// Image is a repository without tag or digest
	// (ghcr.io/acme/app); short names are normalized.
	Image string `json:"image,omitempty"`
	// Registry is a registry host[:port] (ghcr.io): every image from it.
	Registry string `json:"registry,omitempty"`
	// PublicKey is the cosign public key file (cosign.pub, PEM, ECDSA
	// P-256 or ed25519), relative to skiff.yaml.
	PublicKey string `json:"publicKey"`
}

// Metadata names and describes a package.
type Metadata struct {
	// Name is a DNS-1123 label.
	Name string `json:"name"`
	// Version is a semantic version (2.0.0).
	Version     string       `json:"version"`
	Description string       `json:"description,omitempty"`
	Maintainers []Maintainer `json:"maintainers,omitempty"`
}

// Maintainer is a person or team responsible for the package.
type Maintainer struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

// Chart is a Helm chart carried and installed by the package. Exactly one
// of Path or Repo is set.
type Chart struct {
	// Name is the component name, unique in the package.
	Name string `json:"name"`
	// ReleaseName is the chart's Helm release name at install (a DNS-1123
	// label of at most 53 characters, unique among the charts). Default:
	// the deployment name for a chart named like the deployment, else
	// DEPLOYMENT-NAME.
	ReleaseName string `json:"releaseName,omitempty"`
	// Path is a local chart directory or .tgz, relative to skiff.yaml.
	Path string `json:"path,omitempty"`
	// Repo is an https:// Helm repository URL or an oci:// reference to
	// the chart's repository (without the chart name).
	Repo string `json:"repo,omitempty"`
	// Chart is the chart's name in Repo; defaults to Name.
	Chart string `json:"chart,omitempty"`
	// Version is the chart version to fetch from Repo (required with Repo).
	Version string `json:"version,omitempty"`
	// Namespace to install into; defaults to the install namespace.
	Namespace string `json:"namespace,omitempty"`
	// ValuesFiles are values files relative to skiff.yaml, merged in order.
	ValuesFiles []string `json:"valuesFiles,omitempty"`
	// Values are inline values merged after ValuesFiles.
	Values map[string]any `json:"values,omitempty"`
	// ImageValues map dotted value paths (acmesolver.image) to images the
	// package carries (quay.io/jetstack/cert-manager-acmesolver:v1.21.1).
	// The images are carried even when no manifest names them, and at
	// install each value is set to the relocated, digest-pinned reference
	// before rendering: a string value gets the whole reference, a
	// {registry, repository, tag, digest} mapping gets field by field.
	// It reaches images that charts pass as flags or that operators
	// start at run time.
	ImageValues map[string]string `json:"imageValues,omitempty"`
}

// Manifest is a set of plain Kubernetes manifests or a kustomization.
// Exactly one of Files or Kustomize is set.
type Manifest struct {
	// Name is the component name, unique across charts and manifests.
	Name string `json:"name"`
	// Namespace is set on namespaced objects that have none; defaults to
	// the install namespace.
	Namespace string `json:"namespace,omitempty"`
	// Files are YAML files or directories of them, relative to skiff.yaml.
	Files []string `json:"files,omitempty"`
	// Kustomize is a directory holding a kustomization.yaml.
	Kustomize string `json:"kustomize,omitempty"`
}

// File is an arbitrary file carried in the package.
type File struct {
	// Source is a path relative to skiff.yaml.
	Source string `json:"source"`
	// Target is the path inside the package's files tree; defaults to the
	// base name of Source.
	Target string `json:"target,omitempty"`
}

// Dependency is another package that must be installed first.
type Dependency struct {
	// Name is the other package's metadata.name.
	Name string `json:"name"`
	// Version is a semver range (">=1.2.0 <2.0.0", "^1.2").
	Version string `json:"version"`
}

// Lifecycle holds steps run around install operations.
type Lifecycle struct {
	PreInstall  []Step `json:"preInstall,omitempty"`
	PostInstall []Step `json:"postInstall,omitempty"`
	PreUpgrade  []Step `json:"preUpgrade,omitempty"`
	PostUpgrade []Step `json:"postUpgrade,omitempty"`
	PreDelete   []Step `json:"preDelete,omitempty"`
}

// Step is one lifecycle action: apply a manifest component, wait for a
// resource to become ready, run a command on the machine running skiff,
// or run a Kubernetes Job from a carried image.
type Step struct {
	// Name says what the step does; it is shown in progress output.
	Name string `json:"name"`
	// Apply names a Manifest component to apply at this point.
	Apply string `json:"apply,omitempty"`
	// Wait is "kind/name" (optionally "namespace/kind/name") to wait for.
	Wait string `json:"wait,omitempty"`
	// Run runs a command on the machine running skiff; install, upgrade
	// and uninstall refuse it unless the operator allows commands.
	Run *RunStep `json:"run,omitempty"`
	// Job runs a Kubernetes Job from an image the package carries.
	Job *JobStep `json:"job,omitempty"`
	// Timeout is a Go duration; defaults to 5m.
	Timeout string `json:"timeout,omitempty"`
}

// RunStep is a command run on the machine running skiff, in a directory
// holding the package's carried files.
type RunStep struct {
	// Command is the program: a path into the package's files
	// (./bin/seed.sh), an absolute path, or a name looked up in PATH.
	// With Shell it is a script for /bin/sh -c.
	Command string `json:"command"`
	// Args are passed to the program as they are (no shell expansion);
	// with Shell they are the script's $1, $2, ...
	Args []string `json:"args,omitempty"`
	// Shell runs Command with /bin/sh -c.
	Shell bool `json:"shell,omitempty"`
	// Dir is the working directory inside the files directory; default
	// the files directory itself.
	Dir string `json:"dir,omitempty"`
	// Env are extra environment variables.
	Env map[string]string `json:"env,omitempty"`
}

// JobStep is a Kubernetes Job run to completion.
type JobStep struct {
	// Image is the image the Job runs; it is carried in the package and
	// relocated to the site registry at install.
	Image string `json:"image"`
	// Command replaces the image's entrypoint; Args its arguments.
	Command []string `json:"command,omitempty"`
	Args    []string `json:"args,omitempty"`
	// Env are environment variables of the container.
	Env map[string]string `json:"env,omitempty"`
	// Namespace to run the Job in; default the install namespace.
	Namespace string `json:"namespace,omitempty"`
	// ServiceAccount the Job's pod runs as; default the namespace's
	// default service account.
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// Retries is the Job's backoffLimit; default 0 (one attempt).
	Retries int32 `json:"retries,omitempty"`
}

// NetworkPolicy configures generated NetworkPolicies.
type NetworkPolicy struct {
	// Enabled turns the generated policies on.
	Enabled bool `json:"enabled"`
	// Allow lists the allowed flows besides traffic inside the namespace.
	Allow []NetworkAllow `json:"allow,omitempty"`
}

// NetworkAllow is one allowed flow.
type NetworkAllow struct {
	Name string `json:"name"`
	// Direction is "ingress" or "egress".
	Direction string `json:"direction"`
	// PodSelector selects the pods the rule applies to; empty means all.
	PodSelector map[string]string `json:"podSelector,omitempty"`
	// CIDR, Namespace or Pods name the peer.
	CIDR      string            `json:"cidr,omitempty"`
	Namespace string            `json:"namespace,omitempty"`
	Pods      map[string]string `json:"pods,omitempty"`
	Ports     []int32           `json:"ports,omitempty"`
	Protocol  string            `json:"protocol,omitempty"`
}
