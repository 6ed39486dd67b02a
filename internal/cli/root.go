// Package cli is the skiff command line: one thin file per verb, each
// parsing flags into an options value, calling one library function and
// rendering its result.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/internal/kube"
	"github.com/skiffhq/skiff/internal/vuln"
)

// Version is stamped at build time with -ldflags "-X .../cli.Version=...".
var Version = "dev"

// Streams are the standard streams a command uses: stdout carries only
// program output, stderr carries status, progress and logs.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// ExitError carries a specific exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// app is the state shared by all verbs of one invocation.
type app struct {
	streams  Streams
	log      *slog.Logger
	verbose  int
	logFmt   string
	noColor  bool
	progress string
	// bar is the progress bar being shown, if any: stderr output goes
	// above it (see errOut).
	bar atomic.Pointer[blobProgress]
}

// errOut is stderr for logs, warnings and status lines: while a progress
// bar is shown, lines are printed above it rather than through it.
type errOut struct{ a *app }

func (w errOut) Write(b []byte) (int, error) {
	if bp := w.a.bar.Load(); bp != nil {
		if n, err := bp.p.Write(b); err == nil {
			return n, nil
		}
	}
	return w.a.streams.Err.Write(b)
}

// Run executes the skiff command line and returns the process exit code.
func Run(ctx context.Context, s Streams, args []string) int {
	a := &app{streams: s}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code, hint := exitError, ""
	var ee *ExitError
	switch {
	case errors.Is(err, context.Canceled):
		code, hint = exitInterrupted, "interrupted; nothing was left half-written, run the command again to resume"
	case errors.As(err, &ee):
		code = ee.Code
	case errors.Is(err, vuln.ErrBlocked):
		code = exitBlocked
	}
	if strings.EqualFold(a.logFmt, "json") {
		// One JSON object, like the log lines before it.
		e := map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "level": "ERROR", "msg": err.Error(), "exitCode": code}
		if hint != "" {
			e["hint"] = hint
		}
		json.NewEncoder(s.Err).Encode(e)
		return code
	}
	fmt.Fprintf(s.Err, "skiff: error: %s\n", err)
	if hint != "" {
		fmt.Fprintf(s.Err, "skiff: hint: %s\n", hint)
	}
	return code
}

// Exit codes, documented in skiff --help.
const (
	exitOK          = 0
	exitError       = 1
	exitChanges     = 2 // diff: the upgrade would change objects
	exitInterrupted = 130
)

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "skiff",
		Short: "Carry Kubernetes software across an air gap",
		Long: `Skiff builds one signed, self-contained archive of a package's images,
charts, manifests and files on the connected side, and verifies, loads and
installs it on the air-gapped side.

Exit codes: 0 success; 1 error; 2 skiff diff found changes; 3 a gate
refused the package (vulnerability policy: scan, install, upgrade, hub
rescan); 130 interrupted (run the command again to resume). With
--log-format json, errors are written to stderr as one JSON object
({"level":"ERROR","msg":...,"exitCode":N}) like the log lines.

Shell completion: source <(skiff completion bash), or zsh, fish or
powershell (skiff completion bash --help shows how to install it for
good). It completes flag values, kubeconfig contexts, deployment names
and namespaces from the cluster, HUB/OWNER/NAME:VERSION from the hubs
you are logged in to, and push's HUB/OWNER from the owners you can write
to there.

Output: results go to stdout (-o table, json or yaml); progress, stage
messages and warnings to stderr, one "skiff: warning:" line per event (a
JSON record with --log-format json). On a terminal the progress bar
never goes back (the byte total grows as blobs are found; the fill waits
for it) and stage messages print above it. Logs of Helm, client-go (such
as "Waited before sending request") and the embedded registry show with
-v (info) or -vv (debug) only.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.setupLog()
			return nil
		},
	}
	root.PersistentFlags().CountVarP(&a.verbose, "verbose", "v", "more log output (-v info, -vv debug)")
	root.PersistentFlags().StringVar(&a.logFmt, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&a.progress, "progress", "auto", "progress display: auto, bars, plain or none")
	for _, add := range verbs {
		root.AddCommand(add(a))
	}
	requireSubcommands(root)
	addCompletions(root)
	return root
}

// requireSubcommands makes every command group below root (hub, trust,
// registry, ...) fail when run without a known subcommand, instead of
// printing help and exiting 0.
func requireSubcommands(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = unknownSubcommand
		}
		requireSubcommands(c)
	}
}

// verbs are registered by each verb file's init.
var verbs []func(*app) *cobra.Command

func register(f func(*app) *cobra.Command) { verbs = append(verbs, f) }

func (a *app) setupLog() {
	level := slog.LevelWarn
	switch {
	case a.verbose == 1:
		level = slog.LevelInfo
	case a.verbose >= 2:
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if strings.EqualFold(a.logFmt, "json") {
		h = slog.NewJSONHandler(errOut{a}, opts)
	} else {
		h = slog.NewTextHandler(errOut{a}, opts)
	}
	a.log = slog.New(h)
	// Libraries that log process-wide (Helm's slog calls, client-go's
	// klog: "Waited before sending request") follow the same level, so
	// their chatter shows with -v only.
	slog.SetDefault(a.log)
	kube.SetLogger(a.log)
}

// isTerminal reports whether w is a character device (a TTY).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// status prints a status line on stderr.
func (a *app) status(format string, args ...any) {
	fmt.Fprintf(errOut{a}, format+"\n", args...)
}

// table returns a tab-aligned writer on stdout for a command's table
// output; Flush it when done.
func (a *app) table() *tabwriter.Writer {
	return tabwriter.NewWriter(a.streams.Out, 0, 4, 2, ' ', 0)
}
