package cli

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/hub"
	skregistry "github.com/skiffhq/skiff/internal/registry"
)

func init() { register(newHub) }

func newHub(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hub",
		Short: "Run and administer a Skiff hub (an offline package repository)",
		Long: `A hub stores packages for a site: publishers push signed archives
(skiff push), the hub checks them, administrators approve them, and
everyone with read permission pulls or installs approved packages
(skiff pull, skiff install HUB/OWNER/NAME:VERSION). See docs/hub.md.`,
	}
	cmd.AddCommand(newHubServe(a))
	for _, f := range hubVerbs {
		cmd.AddCommand(f(a))
	}
	return cmd
}

// hubVerbs are hub subcommands defined in their own files.
var hubVerbs []func(*app) *cobra.Command

// registerHub adds a hub subcommand (call it from init).
func registerHub(f func(*app) *cobra.Command) { hubVerbs = append(hubVerbs, f) }

func newHubServe(a *app) *cobra.Command {
	var (
		o         hub.Options
		so        hub.ServeOptions
		addr      string
		addrFile  string
		initAdmin string
		gf        gateFlags
		sf        storageFlags
	)
	cmd := &cobra.Command{
		Use:   "serve --root DIR [--addr 127.0.0.1:8443]",
		Short: "Serve a hub",
		Long: `Serve runs the hub: the OCI distribution API under /v2/, the JSON API
under /api/v1/ and a web UI under /ui/ (open http://ADDR/ui/ in a browser
to search, inspect and review packages; / redirects there), with metadata
in DIR/hub.db (SQLite) or the PostgreSQL database of --database-url.
--init-admin NAME creates the first site administrator and prints its
password once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			o.Logger = a.log
			var err error
			if o.Storage, err = sf.storage(); err != nil {
				return err
			}
			g, err := hubVulnGate(a, &gf) // hubrescan.go
			if err != nil {
				return err
			}
			if g != nil {
				o.Gates = append(o.Gates, *g)
			}
			h, err := hub.New(ctx, o)
			if err != nil {
				return err
			}
			defer h.Close()
			if initAdmin != "" {
				pw, err := h.Store().InitAdmin(ctx, initAdmin)
				if err != nil {
					return err
				}
				if pw != "" {
					fmt.Fprintf(a.streams.Out, "created site administrator %s with password %s\n", initAdmin, pw)
				}
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listening on %s: %w (pick another --addr)", addr, err)
			}
			if addrFile != "" {
				if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
					ln.Close()
					return err
				}
			}
			scheme := "http"
			if so.CertFile != "" {
				scheme = "https"
			}
			a.status("hub listening on %s://%s (root %s, %d approval(s) required)", scheme, ln.Addr(), o.Root, max(o.Approvals, 1))
			return h.Serve(ctx, ln, so)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Root, "root", "skiff-hub", "directory for storage, the SQLite database and the audit head")
	fl.StringVar(&addr, "addr", "127.0.0.1:8443", "address to listen on")
	fl.StringVar(&addrFile, "addr-file", "", "write the listening address to this file (with --addr 127.0.0.1:0)")
	fl.StringVar(&o.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://...) instead of SQLite")
	fl.IntVar(&o.Approvals, "approvals", hub.DefaultApprovals, "approvals needed by administrators other than the uploader")
	fl.StringVar(&o.TrustDir, "trust-dir", "", "public keys (*.pub) packages must be signed with (required unless --allow-unsigned)")
	fl.BoolVar(&o.AllowUnsigned, "allow-unsigned", false, "skip the signature gate (test hubs only)")
	fl.DurationVar(&o.TokenTTL, "token-ttl", hub.DefaultTokenTTL, "lifetime of login tokens")
	fl.DurationVar(&o.MaxTokenTTL, "max-token-ttl", hub.MaxTokenTTL, "longest lifetime of any token (logins, API tokens); older tokens are refused")
	fl.DurationVar(&o.UploadPurgeAge, "upload-purge-age", hub.DefaultUploadPurgeAge, "delete blob uploads unfinished for this long (hourly housekeeping)")
	fl.Int64Var(&o.MaxUnreferenced, "max-unreferenced-upload", hub.DefaultMaxUnreferenced, "bytes of uploaded blobs no manifest references yet that one owner may hold (within --upload-purge-age); -1 for no bound")
	fl.StringVar(&initAdmin, "init-admin", "", "create this site administrator if missing and print its password")
	fl.StringVar(&so.CertFile, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&so.KeyFile, "tls-key", "", "TLS private key (PEM)")
	gf.add(cmd) // the vulnerability gate: on when any of its flags is given
	sf.add(cmd)
	return cmd
}

// storageFlags select the hub's content storage.
type storageFlags struct {
	kind string
	s3   skregistry.S3Storage
}

func (f *storageFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.kind, "storage", "filesystem", "where package content is stored: filesystem (ROOT/storage) or s3")
	fl.StringVar(&f.s3.Endpoint, "s3-endpoint", "", "URL of an S3-compatible service (empty: AWS); credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	fl.StringVar(&f.s3.Bucket, "s3-bucket", "", "S3 bucket (must exist)")
	fl.StringVar(&f.s3.Region, "s3-region", "", "S3 region (required for AWS)")
	fl.StringVar(&f.s3.RootDirectory, "s3-prefix", "", "key prefix inside the bucket")
	fl.BoolVar(&f.s3.ForcePathStyle, "s3-path-style", true, "address the bucket as ENDPOINT/BUCKET (S3-compatible services); false for virtual-hosted style")
}

// storage is the content storage the flags select.
func (f *storageFlags) storage() (skregistry.Storage, error) {
	switch f.kind {
	case "filesystem", "":
		return skregistry.Storage{}, nil
	case "s3":
		s := f.s3
		s.AccessKey, s.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		s.Insecure = strings.HasPrefix(s.Endpoint, "http://")
		if s.Bucket == "" {
			return skregistry.Storage{}, errors.New("--storage s3 needs --s3-bucket NAME")
		}
		return skregistry.Storage{S3: &s}, nil
	}
	return skregistry.Storage{}, fmt.Errorf("--storage %q: use filesystem or s3", f.kind)
}
