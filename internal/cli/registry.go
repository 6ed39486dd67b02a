package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/registry"
)

func init() { register(newRegistry) }

func newRegistry(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "registry", Short: "Run Skiff's embedded OCI registry"}
	var o registry.Options
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Serve an OCI registry from a directory",
		Long: `Serve runs an OCI distribution registry (the CNCF distribution v3 code)
with on-disk storage, for sites that have no registry yet. With
--self-signed it generates a TLS certificate for 127.0.0.1, localhost and
--host names and prints where the CA certificate is.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Logger = a.log
			s, err := registry.New(cmd.Context(), o)
			if err != nil {
				return err
			}
			scheme := "http"
			if s.TLS() {
				scheme = "https"
			}
			a.status("registry listening on %s://%s (storage %s)", scheme, s.Addr(), o.RootDir)
			if ca := s.CACertFile(); ca != "" {
				a.status("CA certificate: %s (clients pass it: --ca-file %s --registry https://%s)", ca, ca, s.Addr())
			}
			err = s.Serve(cmd.Context())
			if err != nil && cmd.Context().Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("registry: %w", err)
			}
			return nil
		},
	}
	fl := serve.Flags()
	fl.StringVar(&o.Addr, "addr", "127.0.0.1:5000", "address to listen on")
	fl.StringVar(&o.RootDir, "root", "skiff-registry", "storage directory")
	fl.StringVar(&o.CertFile, "tls-cert", "", "TLS certificate (PEM)")
	fl.StringVar(&o.KeyFile, "tls-key", "", "TLS private key (PEM)")
	fl.BoolVar(&o.SelfSigned, "self-signed", false, "generate a self-signed TLS certificate into the storage directory")
	fl.StringSliceVar(&o.Hosts, "host", nil, "extra host names for the self-signed certificate")
	fl.StringVar(&o.Htpasswd, "htpasswd", "", "htpasswd file (bcrypt) to require basic auth")
	cmd.AddCommand(serve)
	cmd.AddCommand(newRegistryGC(a))
	cmd.AddCommand(newRegistryMirrorConfig(a))
	return cmd
}
