package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/build"
	"github.com/skiffhq/skiff/internal/bytesize"
)

func init() { register(newBuild) }

// buildResult is what build reports (-o json|yaml).
type buildResult struct {
	Archive   string `json:"archive"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	Images    int    `json:"images"`
	Blobs     int    `json:"blobs"`
	Bytes     int64  `json:"bytes"`
	SignedBy  string `json:"signedBy,omitempty"`
	DeltaBase string `json:"deltaBase,omitempty"`
	Omitted   int    `json:"omitted,omitempty"`
	// Warnings are also printed on stderr.
	Warnings []string `json:"warnings,omitempty"`
}

func newBuild(a *app) *cobra.Command {
	var (
		o       build.Options
		rf      remoteFlags
		ff      fetchFlags
		tf      trustFlags
		hf      hubFlags
		keyFile string
		depHubs []string
		out     *formatFlag
	)
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build a signed package archive from skiff.yaml",
		Long: `Build renders the package's charts and manifests offline, finds every image
they reference, pulls those images (keeping only the requested platforms)
and writes ONE archive: an OCI image layout in a tar, layers deduplicated,
signed when --sign-key is given. The images' own signatures, attestations
and OCI referrers travel with them (docs/trust.md); what is carried but
not verified (keyless signatures) is reported as a warning.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if len(args) == 1 {
				o.Spec = args[0]
			}
			stopProfiling, err := startProfiling()
			if err != nil {
				return err
			}
			defer func() { err = errors.Join(err, stopProfiling()) }()
			if o.Remote, err = rf.options(); err != nil {
				return err
			}
			o.Chart = ff.chart()
			if keyFile != "" {
				if o.SignKey, err = readPrivateKey(a, keyFile); err != nil {
					return err
				}
			}
			if o.WithDeps {
				if o.DepOpen, err = tf.options(a); err != nil {
					return err
				}
				if len(depHubs) > 0 {
					dir, cleanup, err := depsTempDir()
					if err != nil {
						return err
					}
					defer cleanup()
					o.DepSource = hubDepSource(&hf, depHubs, dir)
				}
			}
			o.CreatedBy = "skiff " + Version
			bp := a.newBlobProgress("pull")
			o.Progress = func(e build.Event) {
				if e.Pull != nil {
					bp.event(*e.Pull)
					return
				}
				bp.message(e.Message)
			}
			res, err := build.Build(cmd.Context(), o)
			bp.done()
			if err != nil {
				return err
			}
			r := buildResult{
				Archive: res.Path, Name: res.Description.Name, Version: res.Description.Version,
				Images: len(res.Description.Images), Blobs: res.Blobs, Bytes: res.Bytes, Omitted: res.Omitted,
				Warnings: res.Warnings,
			}
			for _, w := range res.Warnings {
				a.warn(w)
			}
			if o.SignKey != nil {
				r.SignedBy = o.SignKey.ID()
			}
			if res.Description.Delta != nil {
				r.DeltaBase = res.Description.Delta.Base
			}
			return a.print(out, r, func() error {
				signed := "unsigned"
				if r.SignedBy != "" {
					signed = "signed by " + r.SignedBy
				}
				if r.DeltaBase != "" {
					signed += fmt.Sprintf(", delta of %s (%d blobs left out)", r.DeltaBase, r.Omitted)
				}
				_, err := fmt.Fprintf(a.streams.Out, "%s: %s %s, %d images, %d blobs, %s, %s\n", r.Archive, r.Name,
					r.Version, r.Images, r.Blobs, bytesize.Format(r.Bytes), signed)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Spec, "file", "f", "", "path to skiff.yaml or its directory (default .)")
	outputFile(cmd, &o.Output, "archive to write (default NAME-VERSION.skiff)")
	out = addFormat(cmd, "--output-file")
	fl.StringVar(&o.Version, "version", "", "override metadata.version")
	fl.StringVar(&o.KubeVersion, "kube-version", "", "Kubernetes version to render the charts for, like 1.35 (default: the spec's kubeVersion, else Helm's default)")
	fl.StringSliceVar(&o.Platforms, "platform", nil, "image platforms to keep, e.g. linux/amd64,linux/arm64 (default: the spec's)")
	fl.StringArrayVar(&o.Set, "set", nil, "override a chart value: CHART.key=value (repeatable)")
	fl.IntVar(&o.Concurrency, "concurrency", 4, "images pulled in parallel")
	fl.BoolVar(&o.NoSBOM, "no-sbom", false, "do not generate CycloneDX SBOMs of the images (install gates on them)")
	fl.StringVar(&keyFile, "sign-key", "", "private key to sign the archive with (see skiff keygen)")
	fl.StringVar(&o.DeltaFrom, "delta-from", "", "build a delta: leave out the image blobs an inventory (skiff inventory) or an older archive holds")
	fl.BoolVar(&o.WithDeps, "with-deps", false, "bundle the dependencies (from --deps), as pinned by skiff.lock if present, and write skiff.lock")
	fl.BoolVar(&o.UpdateDeps, "update-deps", false, "with --with-deps: ignore skiff.lock, pick the highest version in range again and rewrite it")
	fl.StringArrayVar(&o.DepArchives, "deps", []string{"."}, "dependency archives, or directories of *.skiff (repeatable)")
	fl.StringArrayVar(&depHubs, "deps-hub", nil, "also resolve dependencies from approved packages of HUB/OWNER (repeatable; uses the stored skiff login)")
	hf.add(cmd)
	rf.add(cmd)
	ff.add(cmd)
	tf.add(cmd)
	return cmd
}
