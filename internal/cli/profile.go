package cli

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// Environment variables that profile a command, for developers: each
// names a file to write.
const (
	envCPUProfile = "SKIFF_CPUPROFILE" // a CPU profile (go tool pprof)
	envTrace      = "SKIFF_TRACE"      // an execution trace (go tool trace)
)

// startProfiling starts the CPU profile and the execution trace that the
// environment asks for. The returned stop ends them and closes their
// files; call it once the command's work is done.
func startProfiling() (stop func() error, err error) {
	var stops []func() error
	stop = func() error {
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	start := func(env string, begin func(*os.File) error, end func()) error {
		path := os.Getenv(env)
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("%s: %w", env, err)
		}
		if err := begin(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", env, err)
		}
		stops = append(stops, func() error { end(); return f.Close() })
		return nil
	}
	if err := start(envCPUProfile, func(f *os.File) error { return pprof.StartCPUProfile(f) }, pprof.StopCPUProfile); err != nil {
		return nil, errors.Join(err, stop())
	}
	if err := start(envTrace, func(f *os.File) error { return trace.Start(f) }, trace.Stop); err != nil {
		return nil, errors.Join(err, stop())
	}
	return stop, nil
}
