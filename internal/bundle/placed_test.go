package bundle

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// placeAll lays out p's archive at out and writes its image blobs (in
// reverse order, as concurrent fetches may), except those skip reports.
func placeAll(t *testing.T, p *pkg, out, journal string, skip func(digest.Digest) bool) (*Placed, []ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	images, err := ImageBlobs(ctx, p.store, p.images, nil)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := CreatePlaced(ctx, out, images, PlacedOptions{Journal: journal})
	if err != nil {
		t.Fatalf("CreatePlaced: %v", err)
	}
	for _, d := range slices.Backward(images) {
		if pl.Done(d.Digest) || (skip != nil && skip(d.Digest)) {
			continue
		}
		rc, err := p.store.Fetch(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if err := pl.Write(ctx, d, rc); err != nil {
			t.Fatalf("Write %s: %v", d.Digest, err)
		}
		rc.Close()
	}
	return pl, images
}

// TestPlacedByteIdentical: an archive written in place is byte for byte
// the one Write writes, and nothing is left beside it.
func TestPlacedByteIdentical(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, buildOptions{layers: 3, layerSize: progressEvery + 1001})
	want, err := os.ReadFile(writePackage(t, p, t.TempDir(), WriteOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	dir, stage := t.TempDir(), t.TempDir()
	out := filepath.Join(dir, "demo.skiff")
	pl, _ := placeAll(t, p, out, filepath.Join(stage, "journal"), nil)
	copied := false
	res, err := pl.Finish(ctx, p.store, p.root, WriteOptions{Copied: func() { copied = true }})
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	pl.Close()
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the placed archive (%d bytes) differs from Write's (%d bytes)", len(got), len(want))
	}
	if res.Bytes != int64(len(got)) || !copied {
		t.Errorf("Bytes = %d (file %d), Copied called: %v", res.Bytes, len(got), copied)
	}
	if left, _ := os.ReadDir(dir); len(left) != 1 {
		t.Errorf("left beside the archive: %v", left)
	}
	if left, _ := os.ReadDir(stage); len(left) != 0 {
		t.Errorf("the journal was not removed: %v", left)
	}
}

// TestPlacedResumes: a later Placed for the same output keeps the blobs an
// earlier one wrote, after hashing them, and drops a damaged one.
func TestPlacedResumes(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, buildOptions{layers: 3, layerSize: 5000})
	dir, stage := t.TempDir(), t.TempDir()
	out, journal := filepath.Join(dir, "demo.skiff"), filepath.Join(stage, "journal")
	first, images := placeAll(t, p, out, journal, nil)
	first.Close() // interrupted before Finish
	if _, err := os.Stat(out); err == nil {
		t.Fatal("an unfinished archive is in place")
	}
	// Damage the largest blob in the partial file.
	big := slices.MaxFunc(images, func(a, b ocispec.Descriptor) int { return int(a.Size - b.Size) })
	partial := filepath.Join(dir, ".demo.skiff.partial")
	f, err := os.OpenFile(partial, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := first.at[big.Digest].off
	f.WriteAt([]byte{'X'}, off+10)
	f.Close()

	second, err := CreatePlaced(ctx, out, images, PlacedOptions{Journal: journal})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range images {
		if second.Done(d.Digest) == (d.Digest == big.Digest) {
			t.Errorf("blob %s (damaged: %v): kept = %v", d.Digest, d.Digest == big.Digest, second.Done(d.Digest))
		}
	}
	// Finish refuses while a blob is missing.
	if _, err := second.Finish(ctx, p.store, p.root, WriteOptions{}); !errors.Is(err, ErrMissingBlob) {
		t.Fatalf("Finish with a blob missing: %v, want ErrMissingBlob", err)
	}
	rc, _ := p.store.Fetch(ctx, big)
	if err := second.Write(ctx, big, rc); err != nil {
		t.Fatal(err)
	}
	if _, err := second.Finish(ctx, p.store, p.root, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, out, VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestPlacedRefuses: content that does not match its descriptor, a blob
// that was not laid out, and a partial file no journal describes.
func TestPlacedRefuses(t *testing.T) {
	ctx := context.Background()
	p := buildPackage(t, buildOptions{})
	dir, stage := t.TempDir(), t.TempDir()
	out := filepath.Join(dir, "demo.skiff")
	images, err := ImageBlobs(ctx, p.store, p.images, nil)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := CreatePlaced(ctx, out, images, PlacedOptions{Journal: filepath.Join(stage, "journal")})
	if err != nil {
		t.Fatal(err)
	}
	d := images[0]
	if err := pl.Write(ctx, d, strings.NewReader(strings.Repeat("x", int(d.Size)))); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Write of other content: %v, want ErrDigestMismatch", err)
	}
	if err := pl.Write(ctx, d, strings.NewReader("x")); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("Write of short content: %v, want ErrSizeMismatch", err)
	}
	if pl.Done(d.Digest) {
		t.Error("a refused blob counts as written")
	}
	stray := ocispec.Descriptor{Digest: digest.FromString("stray"), Size: 5}
	if err := pl.Write(ctx, stray, strings.NewReader("stray")); err == nil {
		t.Error("Write of a blob that was not laid out succeeded")
	}
	pl.Close()

	// Without its journal, the partial file is someone else's.
	if _, err := CreatePlaced(ctx, out, images, PlacedOptions{Journal: filepath.Join(t.TempDir(), "journal")}); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("CreatePlaced over a foreign partial file: %v", err)
	}
	if _, err := CreatePlaced(ctx, out, slices.Concat(images[1:], images[:1]), PlacedOptions{Journal: filepath.Join(stage, "journal")}); err == nil {
		t.Error("CreatePlaced accepted unsorted image blobs")
	}
}
