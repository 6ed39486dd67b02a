package vuln

import (
	"context"
	"errors"
	"fmt"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/sbom"
)

// ErrNoSBOM is returned when a package carries no image SBOMs to scan.
var ErrNoSBOM = errors.New("the package carries no SBOMs")

// ScanPackage scans the image SBOMs a package carries (image, when set,
// keeps one image's).
func ScanPackage(ctx context.Context, db *DB, a *bundle.Archive, d *bundle.Description, image string) (*Report, error) {
	docs, err := sbom.Read(ctx, a, d, image)
	if err != nil {
		return nil, err
	}
	var imgs []sbom.Document
	for _, doc := range docs {
		if doc.Image != sbom.PackageImage {
			imgs = append(imgs, doc)
		}
	}
	// The package SBOM is always written, so no document at all means
	// the package was built with --no-sbom (or by an older Skiff).
	if len(docs) == 0 && (len(d.Images) > 0 || image != "") {
		what := "images"
		if image != "" {
			what = image
		}
		return nil, fmt.Errorf("package %s %s: %w for %s: rebuild it without --no-sbom (or skip the gate with --fail-on none)", d.Name, d.Version, ErrNoSBOM, what)
	}
	return Scan(ctx, db, imgs)
}
