// Command skiff carries Kubernetes software across an air gap.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/skiffhq/skiff/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}
