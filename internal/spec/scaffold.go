package spec

import "strings"

// scaffold is the skiff.yaml written by Scaffold. Commented-out blocks are
// valid YAML once uncommented (a test checks this); they are commented
// because the paths they name do not exist yet.
const scaffold = `# skiff.yaml describes a package: what to carry across the air gap and how
# to install it. The reference for every field is docs/spec.md in the skiff
# repository.
apiVersion: skiff.dev/v1alpha1
kind: Package
metadata:
  # A DNS-1123 label: lowercase letters, digits and '-'.
  name: {{name}}
  # The package's own semantic version, raised on every change.
  version: 0.1.0
  description: {{name}}, packaged with skiff
  # maintainers:
  #   - name: Platform Team
  #     email: platform@example.com

# Image platforms to keep from multi-arch images; linux/amd64 if empty.
platforms:
  - linux/amd64

# Images to carry besides those found in the charts and manifests.
images:
  - docker.io/library/busybox:1.37

# Helm charts, from a repository (repo and version) or from a local chart
# directory or .tgz (path, relative to this file).
charts:
  - name: podinfo
    repo: oci://ghcr.io/stefanprodan/charts
    version: 6.7.1
    # namespace: podinfo
    # valuesFiles: [values/podinfo.yaml]
    values:
      replicaCount: 2
  # - name: my-app
  #   path: charts/my-app

# Plain manifests (files or directories) or a kustomization directory.
# manifests:
#   - name: config
#     files: [manifests/]
#   - name: overlay
#     kustomize: kustomize/prod

# Other files to carry, such as runbooks.
# files:
#   - source: docs/RUNBOOK.md
#     target: RUNBOOK.md

# Packages that must be installed first.
# dependencies:
#   - name: cert-manager
#     version: ">=1.14.0 <2.0.0"

# Steps around install, upgrade and delete.
# lifecycle:
#   postInstall:
#     - name: wait for podinfo
#       wait: deployment/podinfo
#       timeout: 5m
#   preUpgrade:
#     - name: check podinfo answers     # a Job from a carried image
#       job:
#         image: ghcr.io/stefanprodan/podinfo:6.7.1
#         args: [podcli, check, http, localhost:9898]
#       timeout: 10m
#     - name: note the upgrade          # a command on the operator's machine:
#       run:                            # runs only with --allow-commands
#         command: kubectl
#         args: [annotate, namespace, default, skiff.dev/upgraded=yes, --overwrite]

# Default-deny network policies plus the allowed flows.
# networkPolicy:
#   enabled: true
#   allow:
#     - name: from-ingress
#       direction: ingress
#       namespace: ingress-nginx
#       ports: [9898]
`

// Scaffold returns a commented skiff.yaml for a new package, as written
// by "skiff init". name is turned into a DNS-1123 label ("My App" becomes
// "my-app"). The result loads and validates as it is.
func Scaffold(name string) []byte {
	return []byte(strings.ReplaceAll(scaffold, "{{name}}", suggestLabel(name)))
}
