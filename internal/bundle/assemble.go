package bundle

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
)

// Store is where [Assemble] pushes: a content.Pusher that can tell what it
// holds. oras memory and OCI layout stores are Stores.
type Store interface {
	content.Pusher
	Exists(ctx context.Context, target ocispec.Descriptor) (bool, error)
}

// Layer is a metadata layer (chart, manifest set, files, SBOM). Either Desc
// names a blob already in the store, or Data and MediaType give the
// content to push. Title is the component name, recorded as the layer's
// org.opencontainers.image.title annotation.
type Layer struct {
	Desc      ocispec.Descriptor
	MediaType string
	Data      []byte
	Title     string
}

// Assemble pushes the package metadata to dst: the config (d), the metadata
// manifest (the layers, sorted by media type then title) and the root index
// (the metadata manifest, then the images sorted by reference). Each image
// descriptor must carry the org.opencontainers.image.ref.name annotation
// and be in dst already. Nothing time-dependent is recorded: the same
// inputs give the same root digest. It returns the root descriptor, as
// index.json lists it.
func Assemble(ctx context.Context, dst Store, d *Description, images []ocispec.Descriptor, layers []Layer) (ocispec.Descriptor, error) {
	if d.Name == "" || d.Version == "" {
		return ocispec.Descriptor{}, errors.New("assembling package: the description needs a name and a version")
	}
	cfg, err := d.Marshal()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cfgDesc, err := push(ctx, dst, MediaTypeConfig, cfg)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("assembling package: pushing the description: %w", err)
	}

	layerDescs := make([]ocispec.Descriptor, 0, len(layers))
	for _, l := range layers {
		ld := l.Desc
		if ld.Digest == "" {
			if l.MediaType == "" {
				return ocispec.Descriptor{}, fmt.Errorf("assembling package: layer %q has no media type", l.Title)
			}
			if ld, err = push(ctx, dst, l.MediaType, l.Data); err != nil {
				return ocispec.Descriptor{}, fmt.Errorf("assembling package: pushing layer %q: %w", l.Title, err)
			}
		} else {
			ld = clean(ld)
			if ld.MediaType == "" {
				ld.MediaType = l.MediaType
			}
			if err := mustExist(ctx, dst, ld, "layer "+l.Title); err != nil {
				return ocispec.Descriptor{}, err
			}
		}
		if l.Title != "" {
			ld.Annotations = map[string]string{AnnotationTitle: l.Title}
		}
		layerDescs = append(layerDescs, ld)
	}
	slices.SortStableFunc(layerDescs, func(a, b ocispec.Descriptor) int {
		return cmp.Or(cmp.Compare(a.MediaType, b.MediaType),
			cmp.Compare(a.Annotations[AnnotationTitle], b.Annotations[AnnotationTitle]),
			cmp.Compare(a.Digest, b.Digest))
	})
	if layerDescs == nil {
		layerDescs = []ocispec.Descriptor{} // "layers" is required
	}
	meta, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactTypeMetadata,
		Config:       cfgDesc,
		Layers:       layerDescs,
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("assembling package: encoding the metadata manifest: %w", err)
	}
	metaDesc, err := push(ctx, dst, ocispec.MediaTypeImageManifest, meta)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("assembling package: pushing the metadata manifest: %w", err)
	}
	metaDesc.ArtifactType = ArtifactTypeMetadata

	imgs := make([]ocispec.Descriptor, 0, len(images))
	for _, img := range images {
		ref := img.Annotations[AnnotationRefName]
		if ref == "" {
			return ocispec.Descriptor{}, fmt.Errorf("assembling package: image %s has no %s annotation", img.Digest, AnnotationRefName)
		}
		if err := checkDescriptor(img); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("assembling package: image %s: %w", ref, err)
		}
		if err := mustExist(ctx, dst, img, "image "+ref); err != nil {
			return ocispec.Descriptor{}, err
		}
		imgs = append(imgs, img)
	}
	slices.SortStableFunc(imgs, func(a, b ocispec.Descriptor) int {
		return cmp.Or(cmp.Compare(a.Annotations[AnnotationRefName], b.Annotations[AnnotationRefName]), cmp.Compare(a.Digest, b.Digest))
	})

	annotations := map[string]string{AnnotationRefName: d.Name + ":" + d.Version}
	if d.Delta != nil {
		annotations[AnnotationDeltaBase] = d.Delta.Base
	}
	root, err := json.Marshal(ocispec.Index{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageIndex,
		ArtifactType: ArtifactTypePackage,
		Manifests:    append([]ocispec.Descriptor{metaDesc}, imgs...),
		Annotations:  annotations,
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("assembling package: encoding the root index: %w", err)
	}
	rootDesc, err := push(ctx, dst, ocispec.MediaTypeImageIndex, root)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("assembling package: pushing the root index: %w", err)
	}
	rootDesc.ArtifactType = ArtifactTypePackage
	rootDesc.Annotations = annotations
	return rootDesc, nil
}

// push pushes data unless dst already holds it, and returns its descriptor.
func push(ctx context.Context, dst Store, mediaType string, data []byte) (ocispec.Descriptor, error) {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	ok, err := dst.Exists(ctx, desc)
	if err != nil {
		return desc, err
	}
	if ok {
		return desc, nil
	}
	if err := dst.Push(ctx, desc, bytes.NewReader(data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return desc, err
	}
	return desc, nil
}

func mustExist(ctx context.Context, dst Store, d ocispec.Descriptor, what string) error {
	ok, err := dst.Exists(ctx, d)
	if err != nil {
		return fmt.Errorf("assembling package: checking %s: %w", what, err)
	}
	if !ok {
		return fmt.Errorf("assembling package: %w: %s (%s) is not in the store: add it before assembling", ErrMissingBlob, what, d.Digest)
	}
	return nil
}

// clean keeps only the fields of a layer descriptor that identify it.
func clean(d ocispec.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
}
