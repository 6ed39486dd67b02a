package cli

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"
)

// readPassword prompts on stderr and reads a line from stdin without echo
// when stdin is a terminal.
func readPassword(a *app, prompt string, confirm bool) ([]byte, error) {
	f, ok := a.streams.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		line, err := bufio.NewReader(a.streams.In).ReadString('\n')
		if err != nil && line == "" {
			return nil, errors.New("no passphrase: set SKIFF_PASSPHRASE or run on a terminal")
		}
		return []byte(strings.TrimRight(line, "\r\n")), nil
	}
	fmt.Fprintf(a.streams.Err, "%s: ", prompt)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(a.streams.Err)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprintf(a.streams.Err, "again: ")
		q, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.streams.Err)
		if err != nil {
			return nil, err
		}
		if string(p) != string(q) {
			return nil, errors.New("the passphrases differ: try again")
		}
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase: type a passphrase, or set SKIFF_PASSPHRASE")
	}
	return p, nil
}
