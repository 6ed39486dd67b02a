package cli

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStartProfiling(t *testing.T) {
	dir := t.TempDir()
	cpu, tr := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "trace.out")
	t.Setenv(envCPUProfile, cpu)
	t.Setenv(envTrace, tr)
	stop, err := startProfiling()
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cpu, tr} {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v, want a non-empty file", p, err)
		}
	}

	t.Setenv(envCPUProfile, filepath.Join(dir, "missing", "cpu.pprof"))
	if _, err := startProfiling(); err == nil {
		t.Error("startProfiling with an unwritable path succeeded")
	}
	t.Setenv(envCPUProfile, "")
	t.Setenv(envTrace, "")
	stop, err = startProfiling()
	if err != nil || stop() != nil {
		t.Errorf("startProfiling with nothing asked: %v", err)
	}
}
