package cli

import (
	"context"
	"os"
	"path/filepath"

	"github.com/skiffhq/skiff/internal/artifact"
	"github.com/skiffhq/skiff/internal/oci"
)

// ociArchive resolves an ARCHIVE argument written as oci://REGISTRY/REPO:TAG:
// the package is pulled from the registry into a temporary archive, which
// the returned cleanup removes. A hub address (HUB/OWNER/NAME:VERSION) is
// pulled from the hub (reached as hf says); anything else is returned as is.
func ociArchive(ctx context.Context, a *app, arg string, remote oci.RemoteOptions, hf *hubFlags) (string, func(), error) {
	if !artifact.IsRef(arg) {
		return hubArchive(ctx, a, arg, hf)
	}
	ref, err := artifact.ParseRef(arg)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "skiff-pull-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	out := filepath.Join(dir, "package.skiff")
	a.status("pulling %s", ref)
	bp := a.newBlobProgress("pulling")
	_, err = artifact.Pull(ctx, ref, out, artifact.PullOptions{Remote: remote, StagingDir: filepath.Join(dir, "stage"), Transfer: bp.event})
	bp.done()
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return out, cleanup, nil
}
