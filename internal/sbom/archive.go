package sbom

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"oras.land/oras-go/v2/content"

	"github.com/skiffhq/skiff/internal/bundle"
)

// PackageImage is the Image name of the package's own SBOM (charts and
// files) in [bundle.Description.SBOMs].
const PackageImage = "package"

// maxSBOMSize bounds one SBOM read from an archive.
const maxSBOMSize = 256 << 20

// Title is the metadata layer title of an image platform's SBOM.
func Title(ref, platform string) string {
	if ref == PackageImage {
		return "sbom:" + PackageImage
	}
	return "sbom:" + ref + "@" + platform
}

// Document is one SBOM carried in a package.
type Document struct {
	// Image is the image reference, or [PackageImage].
	Image    string
	Platform string
	Digest   digest.Digest
	Data     []byte
}

// Name is "IMAGE (PLATFORM)", for messages.
func (d Document) Name() string {
	if d.Platform == "" {
		return d.Image
	}
	return d.Image + " (" + d.Platform + ")"
}

// Read returns the SBOMs the package description lists, read from the
// archive's metadata layers (each checked against its digest). image,
// when set, keeps only that image's SBOMs.
func Read(ctx context.Context, a *bundle.Archive, d *bundle.Description, image string) ([]Document, error) {
	layers := a.Layers()
	var out []Document
	for _, s := range d.SBOMs {
		if image != "" && s.Image != image {
			continue
		}
		i := slices.IndexFunc(layers, func(l ocispec.Descriptor) bool {
			return l.MediaType == bundle.MediaTypeSBOM && l.Digest == s.Digest
		})
		if i < 0 {
			return nil, fmt.Errorf("the SBOM of %s (%s) is listed but not carried: the archive is inconsistent; rebuild it", s.Image, s.Platform)
		}
		if layers[i].Size > maxSBOMSize {
			return nil, fmt.Errorf("the SBOM of %s (%s) is %d bytes, more than %d: rebuild the package", s.Image, s.Platform, layers[i].Size, maxSBOMSize)
		}
		rc, err := a.Fetch(ctx, layers[i])
		if err != nil {
			return nil, fmt.Errorf("reading the SBOM of %s (%s): %w", s.Image, s.Platform, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the SBOM of %s (%s): %w", s.Image, s.Platform, err)
		}
		out = append(out, Document{Image: s.Image, Platform: s.Platform, Digest: s.Digest, Data: data})
	}
	return out, nil
}

// Image is an image root (an index or a manifest) to describe.
type Image struct {
	Ref        string
	Descriptor ocispec.Descriptor
}

// LayersOptions configure [Layers].
type LayersOptions struct {
	Options
	// Concurrency bounds images cataloged at once; if <= 0, 2.
	Concurrency int
	// Progress is told about each SBOM written ("sbom of REF (PLATFORM)").
	Progress func(message string)
}

// Layers generates the SBOM of every platform manifest of images and
// the package's own SBOM (charts, files, images of d), and returns them
// as metadata layers ([bundle.MediaTypeSBOM], titled by [Title]) with
// their [bundle.SBOM] entries for the description. The result does not
// depend on timing.
func Layers(ctx context.Context, src content.Fetcher, images []Image, d *bundle.Description, o LayersOptions) ([]bundle.Layer, []bundle.SBOM, error) {
	type job struct {
		ref string
		m   Manifest
		o   Options
		man *ocispec.Manifest
	}
	var jobs []job
	var distinct []ocispec.Descriptor  // every layer once, in first-use order
	user := map[digest.Digest]string{} // the first image using a layer, for messages
	for _, im := range images {
		ms, err := Manifests(ctx, src, im.Descriptor)
		if err != nil {
			return nil, nil, fmt.Errorf("SBOM of %s: %w", im.Ref, err)
		}
		for _, m := range ms {
			so := o.Options
			so.Ref, so.Platform = im.Ref, m.Platform
			man, err := imageManifest(ctx, src, m.Descriptor, &so)
			if err != nil {
				return nil, nil, err
			}
			for _, l := range man.Layers {
				if _, ok := user[l.Digest]; !ok {
					user[l.Digest] = fmt.Sprintf("%s (%s)", im.Ref, m.Platform)
					distinct = append(distinct, l)
				}
			}
			jobs = append(jobs, job{im.Ref, m, so, man})
		}
	}
	// Each distinct layer is read once, however many images share it.
	scans := make(map[digest.Digest]*layerScan, len(distinct))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cmp.Or(max(o.Concurrency, 0), 2))
	var mu sync.Mutex
	for _, l := range distinct {
		g.Go(func() error {
			sc := newScanner(o.Options)
			defer sc.close()
			ls, err := sc.scanBlob(gctx, src, l)
			if err != nil {
				return fmt.Errorf("SBOM of %s: %w", user[l.Digest], err)
			}
			mu.Lock()
			scans[l.Digest] = ls
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	out := make([][]byte, len(jobs))
	for i, j := range jobs {
		b, err := compose(j.man.Layers, scans, j.m.Descriptor.Digest, j.o).marshal()
		if err != nil {
			return nil, nil, err
		}
		out[i] = b
		if o.Progress != nil {
			o.Progress(fmt.Sprintf("SBOM of %s (%s): %s", j.ref, j.m.Platform, humanCount(b)))
		}
	}
	var layers []bundle.Layer
	var entries []bundle.SBOM
	titles := map[string]int{}
	add := func(ref, platform string, b []byte) {
		t := Title(ref, platform)
		if n := titles[t]; n > 0 {
			t = fmt.Sprintf("%s#%d", t, n+1)
		}
		titles[Title(ref, platform)]++
		layers = append(layers, bundle.Layer{MediaType: bundle.MediaTypeSBOM, Title: t, Data: b})
		entries = append(entries, bundle.SBOM{Image: ref, Platform: platform, Digest: digest.FromBytes(b)})
	}
	for i, j := range jobs {
		add(j.ref, j.m.Platform, out[i])
	}
	pb, err := Package(d, o.Options)
	if err != nil {
		return nil, nil, err
	}
	add(PackageImage, "", pb)
	return layers, entries, nil
}

func humanCount(b []byte) string {
	bom, err := Parse(b)
	if err != nil {
		return "unreadable"
	}
	return fmt.Sprintf("%d components", len(bom.Components))
}
