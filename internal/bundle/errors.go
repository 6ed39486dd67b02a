package bundle

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; the returned errors
// wrap them with the member or digest at fault and the fix.
var (
	// ErrDigestMismatch: a blob's content does not match its digest.
	ErrDigestMismatch = errors.New("content does not match its digest")
	// ErrSizeMismatch: a blob's size differs from the size a descriptor gives.
	ErrSizeMismatch = errors.New("size does not match its descriptor")
	// ErrTruncated: the archive ends early.
	ErrTruncated = errors.New("archive is truncated")
	// ErrUnsafePath: a tar member is not a regular file with an expected
	// name (absolute, "..", link, device, unknown name or duplicate).
	ErrUnsafePath = errors.New("unsafe archive member")
	// ErrMissingBlob: a blob the package graph refers to is not in the
	// archive, and is not an allowed delta omission.
	ErrMissingBlob = errors.New("blob is missing")
	// ErrExtraneousBlob: the archive holds a blob the package graph does
	// not refer to.
	ErrExtraneousBlob = errors.New("blob is not part of the package")
	// ErrNotPackage: the file is not a Skiff package archive (not a tar,
	// members out of order, no package root, malformed index or manifest).
	ErrNotPackage = errors.New("not a skiff package")
	// ErrCorrupt: a tar header is damaged.
	ErrCorrupt = errors.New("archive is damaged")
)
