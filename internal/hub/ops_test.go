package hub

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
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

// exportManifest is the manifest of an export of one package
// acme/app:1.0 whose root is the blob "foo", with the blobs and omitted
// lists given.
func exportManifest(blobs, omitted string) string {
	return `{"format":"` + ExportFormat + `","created":"2025-01-01T00:00:00Z","since":"0001-01-01T00:00:00Z","packages":[{"owner":"acme","name":"app","version":"1.0","digest":"` + fooDigest + `","approved":"2025-01-01T00:00:00Z","size":3}],"blobs":[` + blobs + `],"omitted":[` + omitted + `]}`
}

const (
	fooDigest = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" // sha256("foo")
	fooBlob   = `{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + fooDigest + `","size":3}`
	fooPath   = "blobs/sha256/2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
)

func TestReadExportRefuses(t *testing.T) {
	good := exportManifest(fooBlob, "")
	v1 := `{"format":"skiff-hub-export/v1","packages":[]}`
	for name, c := range map[string]struct {
		data []byte
		ok   bool
		msg  string
	}{
		"good":             {tarOf(t, ExportManifestName, good, fooPath, "foo"), true, ""},
		"omitted root":     {tarOf(t, ExportManifestName, exportManifest("", fooBlob)), true, ""},
		"altered":          {tarOf(t, ExportManifestName, good, fooPath, "fox"), false, "has sha256"},
		"missing":          {tarOf(t, ExportManifestName, good), false, "missing"},
		"extra":            {tarOf(t, ExportManifestName, good, fooPath, "foo", "x", "y"), false, "not listed"},
		"twice":            {tarOf(t, ExportManifestName, good, fooPath, "foo", fooPath, "foo"), false, "twice"},
		"listed twice":     {tarOf(t, ExportManifestName, exportManifest(fooBlob, fooBlob), fooPath, "foo"), false, "listed twice"},
		"root not listed":  {tarOf(t, ExportManifestName, exportManifest("", "")), false, "neither in the export nor omitted"},
		"traversal":        {tarOf(t, ExportManifestName, exportManifest(strings.Replace(fooBlob, "sha256:", "sha256:../../", 1), ""), "blobs/sha256/../../etc/passwd", "foo"), false, "invalid digest"},
		"no manifest":      {tarOf(t, fooPath, "foo"), false, "not the manifest"},
		"not a tar":        {[]byte("hello"), false, "first member"},
		"old format":       {tarOf(t, ExportManifestName, v1), false, "export again with this version"},
		"unknown field":    {tarOf(t, ExportManifestName, strings.Replace(good, `"since"`, `"sinse"`, 1)), false, "unknown field"},
		"manifest refused": {tarOf(t, ExportManifestName, good, fooPath, "foo"), false, "refused by the callback"},
	} {
		var blobs []string
		_, err := ReadExport(bytes.NewReader(c.data), func(m *ExportManifest) error {
			if name == "manifest refused" {
				return errors.New("refused by the callback")
			}
			return nil
		}, func(b ExportBlob, r io.Reader) error {
			blobs = append(blobs, b.Digest)
			return nil
		})
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", name, err)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), c.msg)):
			t.Errorf("%s: %v, want an error with %q", name, err, c.msg)
		case !c.ok && name != "manifest refused" && !errors.Is(err, ErrBadExport):
			t.Errorf("%s: %v does not wrap ErrBadExport", name, err)
		case name == "good" && (len(blobs) != 1 || blobs[0] != fooDigest):
			t.Errorf("good: blobs %v", blobs)
		}
	}
}

// exportSeeds are the FuzzReadExport seeds: a good export, one with the
// root omitted, one in the old format, and not a tar.
func exportSeeds(f *testing.F) [][]byte {
	return [][]byte{
		tarOf(f, ExportManifestName, exportManifest(fooBlob, "")),
		tarOf(f, ExportManifestName, exportManifest(fooBlob, ""), fooPath, "foo"),
		tarOf(f, ExportManifestName, exportManifest("", fooBlob)),
		tarOf(f, ExportManifestName, `{"format":"skiff-hub-export/v1","packages":[{"owner":"a","name":"b","version":"1","path":"packages/a/b/1.skiff","size":1,"sha256":"00"}]}`, "packages/a/b/1.skiff", "x"),
		[]byte("not a tar"),
	}
}

func FuzzReadExport(f *testing.F) {
	for _, s := range exportSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ReadExport(bytes.NewReader(data), nil, func(b ExportBlob, r io.Reader) error {
			if b.Digest == "" || strings.Contains(ExportBlobPath(b.Digest), "..") {
				t.Fatalf("blob digest %q", b.Digest)
			}
			_, err := io.Copy(io.Discard, r)
			return err
		})
	})
}

// backupSeed is a minimal valid backup of the files given as name,
// content pairs: the files, then the manifest listing each with its true
// size and sha256 (about 2 KB: the fuzzer mutates structure, not
// padding).
func backupSeed(tb testing.TB, files ...string) []byte {
	m := BackupManifest{Format: BackupFormat, Files: []BackupFile{}}
	for i := 0; i+1 < len(files); i += 2 {
		sum := sha256.Sum256([]byte(files[i+1]))
		m.Files = append(m.Files, BackupFile{Path: files[i], Size: int64(len(files[i+1])), SHA256: hex.EncodeToString(sum[:])})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return tarOf(tb, append(files, BackupManifestName, string(mb))...)
}

func TestBackupSeedsRestore(t *testing.T) {
	for _, b := range [][]byte{backupSeed(t, DatabaseFile, "db"), backupSeed(t, DatabaseFile, "db", auditHeadFile, "{}", "storage/a/b", "c")} {
		if _, err := Restore(context.Background(), bytes.NewReader(b), RestoreOptions{Root: t.TempDir() + "/hub"}); err != nil {
			t.Errorf("backup seed: %v", err)
		}
	}
}

func FuzzRestore(f *testing.F) {
	f.Add(backupSeed(f, DatabaseFile, "db"))
	f.Add(backupSeed(f, DatabaseFile, "db", auditHeadFile, "{}", "storage/a/b", "c"))
	f.Add(backupSeed(f, "storage/../x", "y"))
	f.Add(tarOf(f, DatabaseFile, "db", BackupManifestName, `{"format":"`+BackupFormat+`","files":[{"path":"hub.db","size":2,"sha256":"00"}]}`))
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
