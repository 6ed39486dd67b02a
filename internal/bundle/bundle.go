// Package bundle reads and writes Skiff package archives: one plain tar
// holding an OCI image layout whose index.json names a package root index,
// its signatures, and nothing else. The format is described in
// docs/bundle-format.md.
//
// [Assemble] pushes the package's metadata (config, metadata manifest, root
// index) into a store; [Write] walks the graph from the root and writes the
// archive atomically; [Open] indexes an archive by its tar headers and serves
// its blobs as an oras content.ReadOnlyStorage; [Verify] and [VerifyReader]
// check an archive in one sequential pass; [AddSignature] adds a signature.
package bundle

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// Artifact types of the manifests and indexes in a package.
const (
	// ArtifactTypePackage marks the package root index.
	ArtifactTypePackage = "application/vnd.skiff.package.v1"
	// ArtifactTypeMetadata marks the metadata manifest.
	ArtifactTypeMetadata = "application/vnd.skiff.package.metadata.v1"
	// ArtifactTypeSignature marks a signature manifest.
	ArtifactTypeSignature = "application/vnd.skiff.signature.v1"
)

// Media types of the blobs in a package.
const (
	// MediaTypeConfig is the metadata manifest's config: a [Description].
	MediaTypeConfig = "application/vnd.skiff.package.config.v1+json"
	// MediaTypeChart is a packaged Helm chart (.tgz).
	MediaTypeChart = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
	// MediaTypeManifests is one manifest set: zstd-compressed YAML.
	MediaTypeManifests = "application/vnd.skiff.manifests.v1.yaml+zstd"
	// MediaTypeManifestsV0 is the media type archives written before the
	// format slip was fixed give a manifest set; the content is the same
	// (zstd-compressed YAML, not a tar), and readers accept both.
	MediaTypeManifestsV0 = "application/vnd.skiff.manifests.v1.tar+zstd"
	// MediaTypeFiles is a zstd-compressed tar of the carried files.
	MediaTypeFiles = "application/vnd.skiff.files.v1.tar+zstd"
	// MediaTypeSBOM is a CycloneDX JSON SBOM.
	MediaTypeSBOM = "application/vnd.cyclonedx+json"
	// MediaTypeDSSE is a DSSE envelope, the one layer of a signature.
	MediaTypeDSSE = "application/vnd.dsse.envelope.v1+json"
	// MediaTypeEmpty is the empty JSON config ({}) of a signature manifest.
	MediaTypeEmpty = ocispec.MediaTypeEmptyJSON
)

// Annotation keys.
const (
	// AnnotationRefName names an image (its normalized source reference) or
	// the package root ("name:version").
	AnnotationRefName = ocispec.AnnotationRefName
	// AnnotationTitle names a metadata layer (the component name).
	AnnotationTitle = ocispec.AnnotationTitle
	// AnnotationSourceDigest is the digest of the multi-arch index an image
	// index was filtered from.
	AnnotationSourceDigest = "dev.skiff.image.source-digest"
	// AnnotationDeltaBase is set on the root of a delta archive: the digest
	// of the base inventory whose blobs the archive omits.
	AnnotationDeltaBase = "dev.skiff.delta.base"
	// AnnotationDependency names a bundled dependency's package root in
	// the root index (build --with-deps).
	AnnotationDependency = "dev.skiff.dependency"
)

// Member names of the tar, besides blobs/sha256/<hex>.
const (
	memberLayout = ocispec.ImageLayoutFile // "oci-layout"
	memberIndex  = ocispec.ImageIndexFile  // "index.json"
	blobPrefix   = ocispec.ImageBlobsDir + "/sha256/"
)

// maxJSON bounds every JSON document the package reads into memory
// (index.json, manifests, indexes, the config, signature envelopes).
const maxJSON = 4 << 20
