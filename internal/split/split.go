package split

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/reedsolomon"

	"github.com/skiffhq/skiff/internal/atomicfile"
)

// Options configures [Split].
type Options struct {
	// PartSize is the size of each part in bytes; required.
	PartSize int64
	// Parity is the number of Reed–Solomon parity parts to add: up to
	// that many parts may later be lost or damaged.
	Parity int
	// Progress, if set, receives events; it is called synchronously.
	Progress func(Event)
}

// Event reports progress of [Split] and [Join].
type Event struct {
	// Stage is "hash" (reading the archive or checking parts), "write"
	// (writing parts or the joined archive) or "repair".
	Stage string
	// Part names the part concerned, when there is one.
	Part string
	// Done and Total count bytes of the stage.
	Done, Total int64
}

// stripeBudget bounds the memory of one stripe across all shards; a
// stripe is at most maxStripe and at least minStripe bytes per shard.
const (
	stripeBudget = 16 << 20
	minStripe    = 4 << 10
)

// maxStripe is a variable so tests can force many stripes.
var maxStripe = 4 << 20

func stripeSize(shards int, shard int64) int {
	s := max(min(stripeBudget/shards, maxStripe), minStripe)
	return int(min(int64(s), max(shard, 1)))
}

// Split cuts the archive at path into parts of o.PartSize bytes beside it,
// adds o.Parity parity parts and writes the manifest (ManifestPath) last.
// Every file is written to a temporary name and renamed into place; on
// error nothing is left behind. Memory stays bounded by the stripe size,
// whatever the archive size.
func Split(ctx context.Context, path string, o Options) (*Manifest, error) {
	if o.PartSize <= 0 {
		return nil, fmt.Errorf("splitting %s: part size %d: pass a positive --size such as 4G", path, o.PartSize)
	}
	if o.Parity < 0 {
		return nil, fmt.Errorf("splitting %s: negative parity %d: pass --parity 0 or more", path, o.Parity)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("splitting: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("splitting: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("splitting %s: not a regular file", path)
	}
	size := fi.Size()
	sizes := layout(size, o.PartSize)
	k := len(sizes)
	switch {
	case k > MaxParts:
		return nil, fmt.Errorf("splitting %s: %d-byte parts would make more than %d parts: use a larger --size", path, o.PartSize, MaxParts)
	case o.Parity > 0 && k+o.Parity > MaxShards:
		return nil, fmt.Errorf("splitting %s: %d data parts and %d parity parts exceed the %d parts parity can cover: use a larger --size or fewer parity parts", path, k, o.Parity, MaxShards)
	}

	// Pass 1: the archive's own checksum.
	buf := make([]byte, 1<<20)
	sum, err := hashFile(ctx, f, size, buf, func(done int64) {
		emit(o.Progress, Event{Stage: "hash", Part: fi.Name(), Done: done, Total: size})
	})
	if err != nil {
		return nil, fmt.Errorf("splitting %s: %w", path, err)
	}
	m := &Manifest{
		Version:  ManifestVersion,
		Archive:  File{Name: filepath.Base(path), Size: size, SHA256: sum},
		PartSize: o.PartSize,
		Parity:   o.Parity,
	}
	for i, s := range sizes {
		m.Parts = append(m.Parts, Part{File: File{Name: filepath.Base(partName(path, i)), Size: s}})
	}
	for i := range o.Parity {
		m.Parts = append(m.Parts, Part{File: File{Name: filepath.Base(parityName(path, i)), Size: m.shardSize()}, Parity: true})
	}

	dir := filepath.Dir(path)
	outs := make([]*atomicFile, len(m.Parts))
	defer func() {
		for _, a := range outs {
			if a != nil {
				a.Abort()
			}
		}
	}()
	for i, p := range m.Parts {
		if outs[i], err = createAtomic(filepath.Join(dir, p.Name)); err != nil {
			return nil, fmt.Errorf("splitting %s: %w", path, err)
		}
	}

	// Pass 2: data parts, and parity computed stripe by stripe.
	total := size + int64(o.Parity)*m.shardSize()
	var done int64
	progress := func(n int, part string) {
		done += int64(n)
		emit(o.Progress, Event{Stage: "write", Part: part, Done: done, Total: total})
	}
	if o.Parity == 0 {
		for i, s := range sizes {
			r := io.NewSectionReader(f, int64(i)*o.PartSize, s)
			if err := copyChunks(ctx, outs[i], r, buf, func(n int) { progress(n, m.Parts[i].Name) }); err != nil {
				return nil, fmt.Errorf("splitting %s: writing %s: %w", path, m.Parts[i].Name, err)
			}
		}
	} else if err := encode(ctx, f, m, outs, progress); err != nil {
		return nil, fmt.Errorf("splitting %s: %w", path, err)
	}
	var committed []string
	fail := func(err error) (*Manifest, error) {
		for _, c := range committed {
			os.Remove(c)
		}
		return nil, fmt.Errorf("splitting %s: %w", path, err)
	}
	for i := range m.Parts {
		m.Parts[i].SHA256 = outs[i].sum()
		if err := outs[i].Commit(); err != nil {
			return fail(err)
		}
		committed = append(committed, outs[i].dest)
		outs[i] = nil
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, filepath.Base(ManifestPath(path))), append(b, '\n'), 0o644); err != nil {
		return fail(fmt.Errorf("writing the manifest: %w", err))
	}
	return m, nil
}

// encode writes the data parts and the parity parts of m, reading the
// archive one stripe at a time.
func encode(ctx context.Context, f io.ReaderAt, m *Manifest, outs []*atomicFile, progress func(int, string)) error {
	data := m.Data()
	k := len(data)
	enc, err := reedsolomon.New(k, m.Parity)
	if err != nil {
		return fmt.Errorf("setting up parity: %w", err)
	}
	shard := m.shardSize()
	stripe := stripeSize(len(m.Parts), shard)
	bufs := make([][]byte, len(m.Parts))
	for i := range bufs {
		bufs[i] = make([]byte, stripe)
	}
	shards := make([][]byte, len(m.Parts))
	for off := int64(0); off < shard; off += int64(stripe) {
		if err := ctx.Err(); err != nil {
			return err
		}
		l := int(min(int64(stripe), shard-off))
		for i, p := range data {
			n := int(max(min(p.Size-off, int64(l)), 0))
			if n > 0 {
				if _, err := f.ReadAt(bufs[i][:n], int64(i)*m.PartSize+off); err != nil {
					return fmt.Errorf("reading the archive: %w", err)
				}
				if _, err := outs[i].Write(bufs[i][:n]); err != nil {
					return err
				}
				progress(n, p.Name)
			}
			clear(bufs[i][n:l])
			shards[i] = bufs[i][:l]
		}
		for i := k; i < len(m.Parts); i++ {
			shards[i] = bufs[i][:l]
		}
		if err := enc.Encode(shards); err != nil {
			return fmt.Errorf("computing parity: %w", err)
		}
		for i := k; i < len(m.Parts); i++ {
			if _, err := outs[i].Write(shards[i]); err != nil {
				return err
			}
			progress(l, m.Parts[i].Name)
		}
	}
	return nil
}

// JoinOptions configures [Join].
type JoinOptions struct {
	// Output is the archive to write; "" means the archive's name in the
	// manifest's directory.
	Output string
	// Force overwrites an existing Output.
	Force bool
	// Progress, if set, receives events; it is called synchronously.
	Progress func(Event)
}

// JoinResult describes a joined archive.
type JoinResult struct {
	Path string
	// Bytes is the archive size; SHA256 its checksum (hex).
	Bytes  int64
	SHA256 string
	// Damaged are the parts that were missing or corrupt (data parts were
	// rebuilt from parity; damaged parity parts were not needed).
	Damaged []string
	// Repaired is true when data parts were rebuilt from parity.
	Repaired bool
}

// partState is what checking a part found.
type partState struct {
	ok     bool
	reason string
}

// Join checks every part listed in the manifest at manifestPath, rebuilds
// up to Parity missing or corrupt parts from the parity parts, writes the
// archive atomically and checks its sha256 (ErrChecksum). When more parts
// are damaged than parity can rebuild it fails with ErrTooDamaged, naming
// them.
func Join(ctx context.Context, manifestPath string, o JoinOptions) (*JoinResult, error) {
	m, err := ReadManifest(manifestPath)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(manifestPath)
	out := o.Output
	if out == "" {
		out = filepath.Join(dir, m.Archive.Name)
	}
	if !o.Force {
		if _, err := os.Lstat(out); err == nil {
			return nil, fmt.Errorf("joining: %s already exists: remove it, pass -o elsewhere, or --force to overwrite", out)
		}
	}

	// Check every part.
	states := make([]partState, len(m.Parts))
	var total int64
	for _, p := range m.Parts {
		total += p.Size
	}
	var done int64
	buf := make([]byte, 1<<20)
	for i, p := range m.Parts {
		states[i] = checkPart(ctx, filepath.Join(dir, p.Name), p, buf, func(n int64) {
			emit(o.Progress, Event{Stage: "hash", Part: p.Name, Done: done + n, Total: total})
		})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		done += p.Size
	}
	res := &JoinResult{Path: out, Bytes: m.Archive.Size}
	var badData, bad []int
	for i, s := range states {
		if !s.ok {
			bad = append(bad, i)
			res.Damaged = append(res.Damaged, m.Parts[i].Name)
			if !m.Parts[i].Parity {
				badData = append(badData, i)
			}
		}
	}
	if len(bad) > m.Parity {
		return nil, tooDamaged(m, states, bad)
	}

	a, err := createAtomic(out)
	if err != nil {
		return nil, fmt.Errorf("joining: %w", err)
	}
	defer a.Abort()
	if len(badData) == 0 {
		var written int64
		for _, p := range m.Data() {
			pf, err := os.Open(filepath.Join(dir, p.Name))
			if err != nil {
				return nil, fmt.Errorf("joining: %w", err)
			}
			err = copyChunks(ctx, a, io.LimitReader(pf, p.Size), buf, func(n int) {
				written += int64(n)
				emit(o.Progress, Event{Stage: "write", Part: p.Name, Done: written, Total: m.Archive.Size})
			})
			pf.Close()
			if err != nil {
				return nil, fmt.Errorf("joining: %s: %w", p.Name, err)
			}
		}
	} else {
		res.Repaired = true
		if err := repair(ctx, dir, m, states, a, o.Progress); err != nil {
			return nil, fmt.Errorf("joining: rebuilding %s: %w", strings.Join(res.Damaged, ", "), err)
		}
		// The sum of WriteAt calls is not sequential: hash the result.
		if err := a.rehash(ctx); err != nil {
			return nil, fmt.Errorf("joining: %w", err)
		}
	}
	res.SHA256 = a.sum()
	if res.SHA256 != m.Archive.SHA256 {
		return nil, fmt.Errorf("joining %s: %w: it hashes to %s, the manifest says %s: the parts do not belong to this manifest or were damaged beyond what parity detected; copy them again",
			m.Archive.Name, ErrChecksum, res.SHA256, m.Archive.SHA256)
	}
	if err := a.Commit(); err != nil {
		return nil, fmt.Errorf("joining: %w", err)
	}
	return res, nil
}

func tooDamaged(m *Manifest, states []partState, bad []int) error {
	var names []string
	for _, i := range bad {
		names = append(names, fmt.Sprintf("%s (%s)", m.Parts[i].Name, states[i].reason))
	}
	list := strings.Join(names, ", ")
	switch m.Parity {
	case 0:
		return fmt.Errorf("%w: %s: there are no parity parts to rebuild from: copy the parts again", ErrTooDamaged, list)
	case 1:
		return fmt.Errorf("%w: %s: 1 parity part can rebuild only one part: copy the parts again", ErrTooDamaged, list)
	default:
		return fmt.Errorf("%w: %s: %d parity parts can rebuild at most %d parts: copy the parts again", ErrTooDamaged, list, m.Parity, m.Parity)
	}
}

// checkPart checks a part's size and sha256.
func checkPart(ctx context.Context, path string, p Part, buf []byte, progress func(int64)) partState {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return partState{reason: "missing"}
		}
		return partState{reason: err.Error()}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return partState{reason: err.Error()}
	}
	if fi.Size() != p.Size {
		return partState{reason: fmt.Sprintf("%d bytes, want %d", fi.Size(), p.Size)}
	}
	sum, err := hashFile(ctx, f, p.Size, buf, progress)
	if err != nil {
		return partState{reason: err.Error()}
	}
	if sum != p.SHA256 {
		return partState{reason: "corrupt"}
	}
	return partState{ok: true}
}

// repair rebuilds the archive into a from the good parts, stripe by
// stripe.
func repair(ctx context.Context, dir string, m *Manifest, states []partState, a *atomicFile, progress func(Event)) error {
	data := m.Data()
	k := len(data)
	enc, err := reedsolomon.New(k, m.Parity)
	if err != nil {
		return err
	}
	files := make([]*os.File, len(m.Parts))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i, p := range m.Parts {
		if states[i].ok {
			if files[i], err = os.Open(filepath.Join(dir, p.Name)); err != nil {
				return err
			}
		}
	}
	shard := m.shardSize()
	stripe := stripeSize(len(m.Parts), shard)
	bufs := make([][]byte, len(m.Parts))
	for i := range bufs {
		bufs[i] = make([]byte, stripe)
	}
	shards := make([][]byte, len(m.Parts))
	for off := int64(0); off < shard; off += int64(stripe) {
		if err := ctx.Err(); err != nil {
			return err
		}
		l := int(min(int64(stripe), shard-off))
		for i, p := range m.Parts {
			if files[i] == nil {
				shards[i] = bufs[i][:0] // reconstructed into this memory
				continue
			}
			n := int(max(min(p.Size-off, int64(l)), 0))
			if n > 0 {
				if _, err := files[i].ReadAt(bufs[i][:n], off); err != nil {
					return fmt.Errorf("reading %s: %w", p.Name, err)
				}
			}
			clear(bufs[i][n:l])
			shards[i] = bufs[i][:l]
		}
		if err := enc.ReconstructData(shards); err != nil {
			return err
		}
		for i, p := range data {
			n := int(max(min(p.Size-off, int64(l)), 0))
			if n == 0 {
				continue
			}
			if _, err := a.WriteAt(shards[i][:n], int64(i)*m.PartSize+off); err != nil {
				return err
			}
		}
		emit(progress, Event{Stage: "repair", Done: off + int64(l), Total: shard})
	}
	return nil
}

// hashFile returns the hex sha256 of the first size bytes of f, reading
// through buf.
func hashFile(ctx context.Context, f io.ReaderAt, size int64, buf []byte, progress func(int64)) (string, error) {
	h := sha256.New()
	var done int64
	if err := copyChunks(ctx, h, io.NewSectionReader(f, 0, size), buf, func(n int) {
		done += int64(n)
		if progress != nil {
			progress(done)
		}
	}); err != nil {
		return "", err
	}
	if done != size {
		return "", io.ErrUnexpectedEOF
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// copyChunks copies r to w in chunks of len(buf), checking ctx between
// chunks and reporting each chunk's size.
func copyChunks(ctx context.Context, w io.Writer, r io.Reader, buf []byte, progress func(int)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			progress(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func emit(f func(Event), e Event) {
	if f != nil {
		f(e)
	}
}

// atomicFile is an atomic file hashed as it is written through Write
// (WriteAt bypasses the hash: call rehash after it).
type atomicFile struct {
	*atomicfile.File
	dest string
	h    hash.Hash
}

func createAtomic(dest string) (*atomicFile, error) {
	f, err := atomicfile.Create(dest, 0o644)
	if err != nil {
		return nil, err
	}
	return &atomicFile{File: f, dest: dest, h: sha256.New()}, nil
}

func (a *atomicFile) Write(p []byte) (int, error) {
	n, err := a.File.Write(p)
	a.h.Write(p[:n])
	return n, err
}

func (a *atomicFile) sum() string { return hex.EncodeToString(a.h.Sum(nil)) }

// rehash recomputes the checksum from the file's content.
func (a *atomicFile) rehash(ctx context.Context) error {
	fi, err := a.Stat()
	if err != nil {
		return err
	}
	a.h = sha256.New()
	buf := make([]byte, 1<<20)
	return copyChunks(ctx, a.h, io.NewSectionReader(a.File, 0, fi.Size()), buf, func(int) {})
}
