package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/sign"
)

func init() { register(newKeygen) }

func newKeygen(a *app) *cobra.Command {
	var name string
	var encrypt bool
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Create an ed25519 key pair for signing packages",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := sign.GenerateKey()
			if err != nil {
				return err
			}
			var pass []byte
			if encrypt {
				if pass, err = passphrase(a, "passphrase for the new key", true); err != nil {
					return err
				}
			}
			files, err := sign.WriteKeyPair(name, k, pass)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "private key: %s\npublic key:  %s\nkey id:      %s\n", files.PrivateKey, files.PublicKey, k.ID())
			a.status("keep %s secret; give %s to the air-gapped side (`skiff trust add`)", files.PrivateKey, files.PublicKey)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "skiff", "base name of the key files (NAME.key, NAME.pub)")
	cmd.Flags().BoolVar(&encrypt, "encrypt", false, "protect the private key with a passphrase ($SKIFF_PASSPHRASE or prompt)")
	return cmd
}

// passphrase reads a passphrase from $SKIFF_PASSPHRASE or, on a terminal,
// from standard input.
func passphrase(a *app, prompt string, confirm bool) ([]byte, error) {
	if p := os.Getenv("SKIFF_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	return readPassword(a, prompt, confirm)
}

// readPrivateKey loads a signing key, asking for its passphrase only when
// it is encrypted.
func readPrivateKey(a *app, path string) (*sign.PrivateKey, error) {
	return sign.ReadPrivateKeyFile(path, func() ([]byte, error) { return passphrase(a, "passphrase for "+path, false) })
}
