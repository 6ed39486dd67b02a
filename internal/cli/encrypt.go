package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/atomicfile"
	"github.com/skiffhq/skiff/internal/secret"
)

func init() { register(newEncrypt) }

func newEncrypt(a *app) *cobra.Command {
	var (
		recipients []string
		usePass    bool
		output     string
		genKey     string
	)
	cmd := &cobra.Command{
		Use:   "encrypt VALUES.yaml",
		Short: "Encrypt a values file with age (decrypted only in memory at install)",
		Long: `Encrypt writes VALUES.yaml.age (ASCII armored), encrypted to age recipients
(-r age1..., or a recipients file) or with a passphrase (-p, from
$SKIFF_PASSPHRASE or a prompt). install and upgrade decrypt .age values files
in memory with --identity or the passphrase; their values never reach
release records or logs. --generate-identity FILE writes a new age identity
and prints its recipient.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if genKey != "" {
				id, rcpt := secret.GenerateIdentity()
				if _, err := os.Stat(genKey); err == nil {
					return fmt.Errorf("%s exists: choose another file for the new identity", genKey)
				}
				if err := atomicfile.WriteFile(genKey, []byte(id+"\n"), 0o600); err != nil {
					return err
				}
				fmt.Fprintf(a.streams.Out, "identity: %s\nrecipient: %s\n", genKey, rcpt)
				if len(args) == 0 {
					return nil
				}
				recipients = append(recipients, rcpt)
			}
			if len(args) == 0 {
				return errors.New("name the values file to encrypt")
			}
			plain, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if secret.IsEncrypted(plain) {
				return fmt.Errorf("%s is already encrypted: nothing to do (encrypt the plain values file instead)", args[0])
			}
			o := secret.EncryptOptions{Recipients: recipients}
			if usePass {
				if o.Passphrase, err = passphrase(a, "passphrase for "+args[0], true); err != nil {
					return err
				}
			}
			var buf bytes.Buffer
			if err := secret.Encrypt(&buf, bytes.NewReader(plain), o); err != nil {
				return err
			}
			if output == "" {
				output = args[0] + ".age"
			}
			if err := atomicfile.WriteFile(output, buf.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.streams.Out, "wrote %s\n", output)
			a.status("you may now delete %s; pass %s to install/upgrade with -f", args[0], filepath.Base(output))
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&recipients, "recipient", "r", nil, "age recipient (age1...) or recipients file (repeatable)")
	cmd.Flags().BoolVarP(&usePass, "passphrase", "p", false, "encrypt with a passphrase instead")
	cmd.Flags().StringVar(&output, "output-file", "", "output file (default VALUES.yaml.age)")
	migrateOutput(cmd, "--output-file")
	cmd.Flags().StringVar(&genKey, "generate-identity", "", "write a new age identity to FILE and encrypt to it")
	return cmd
}
