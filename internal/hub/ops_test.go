package hub

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
)

func TestSafeBackupName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"hub.db", true},
		{"audit-head.json", true},
		{"storage/docker/registry/v2/blobs/sha256/ab/abcd/data", true},
		{"storage/../../evil", false},
		{"storage/a/../b", false},
		{"storage//a", false},
		{"storage/./a", false},
		{"/storage/a", false},
		{"storage\\..\\a", false},
		{"hub.db-wal", false},
		{"tmp/x", false},
		{"../hub.db", false},
		{"storage/", false},
	} {
		if err := safeBackupName(c.name); (err == nil) != c.ok {
			t.Errorf("%q: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func tarOf(t testing.TB, members ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(members); i += 2 {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: members[i], Size: int64(len(members[i+1])), Mode: 0o644})
		tw.Write([]byte(members[i+1]))
	}
	tw.Close()
	return buf.Bytes()
}

func TestReadExportRefuses(t *testing.T) {
	const sum = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" // sha256("foo")
	manifest := func(path string) string {
		return `{"format":"` + ExportFormat + `","created":"2025-01-01T00:00:00Z","since":"0001-01-01T00:00:00Z","packages":[{"owner":"acme","name":"app","version":"1.0","digest":"sha256:00","approved":"2025-01-01T00:00:00Z","path":"` + path + `","size":3,"sha256":"` + sum + `"}]}`
	}
	good := manifest("packages/acme/app/1.0.skiff")
	for name, c := range map[string]struct {
		data []byte
		ok   bool
	}{
		"good":        {tarOf(t, ExportManifestName, good, "packages/acme/app/1.0.skiff", "foo"), true},
		"altered":     {tarOf(t, ExportManifestName, good, "packages/acme/app/1.0.skiff", "fox"), false},
		"missing":     {tarOf(t, ExportManifestName, good), false},
		"extra":       {tarOf(t, ExportManifestName, good, "packages/acme/app/1.0.skiff", "foo", "x", "y"), false},
		"twice":       {tarOf(t, ExportManifestName, good, "packages/acme/app/1.0.skiff", "foo", "packages/acme/app/1.0.skiff", "foo"), false},
		"traversal":   {tarOf(t, ExportManifestName, manifest("../../etc/passwd"), "../../etc/passwd", "foo"), false},
		"no manifest": {tarOf(t, "packages/acme/app/1.0.skiff", "foo"), false},
		"not a tar":   {[]byte("hello"), false},
	} {
		_, err := ReadExport(bytes.NewReader(c.data), func(ExportEntry, io.Reader) error { return nil })
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrBadExport)) {
			t.Errorf("%s: %v, want ok=%v", name, err, c.ok)
		}
	}
}

func FuzzReadExport(f *testing.F) {
	f.Add(tarOf(f, ExportManifestName, `{"format":"`+ExportFormat+`","packages":[]}`))
	f.Add(tarOf(f, ExportManifestName, `{"format":"`+ExportFormat+`","packages":[{"owner":"a","name":"b","version":"1","path":"packages/a/b/1.skiff","size":1,"sha256":"00"}]}`, "packages/a/b/1.skiff", "x"))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ReadExport(bytes.NewReader(data), func(e ExportEntry, r io.Reader) error {
			if e.Path != exportPath(e.Owner, e.Name, e.Version) {
				t.Fatalf("entry path %q", e.Path)
			}
			_, err := io.Copy(io.Discard, r)
			return err
		})
	})
}

func FuzzRestore(f *testing.F) {
	f.Add(tarOf(f, DatabaseFile, "db", BackupManifestName, `{"format":"`+BackupFormat+`","files":[]}`))
	f.Add(tarOf(f, "storage/../x", "y"))
	f.Add(tarOf(f, DatabaseFile, "db", "storage/a/b", "c", BackupManifestName, `{"format":"`+BackupFormat+`","files":[{"path":"hub.db","size":2,"sha256":"00"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		_, err := Restore(context.Background(), bytes.NewReader(data), RestoreOptions{Root: dir + "/hub"})
		ents, _ := os.ReadDir(dir)
		if err != nil && len(ents) != 0 {
			t.Fatalf("a refused restore left %v", ents)
		}
		if err == nil && (len(ents) != 1 || ents[0].Name() != "hub") {
			t.Fatalf("a restore wrote %v", ents)
		}
	})
}
