package hubapi

import (
	"encoding/json"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Package states. A pushed package is quarantined until its gates run;
// then rejected (a gate failed) or pending until enough approvals make
// it approved. Only approved packages are readable by readers.
const (
	StatusQuarantined = "quarantined"
	StatusPending     = "pending"
	StatusApproved    = "approved"
	StatusRejected    = "rejected"
	StatusRemoved     = "removed"
	// StatusBlocked is a published (pending or approved) package that
	// fails its gates when rescanned (a new vulnerability): unreadable
	// like a pending one, and still immutable. A rescan that passes makes
	// it pending again (approvals start over).
	StatusBlocked = "blocked"
)

// Ref is OWNER/NAME:VERSION.
func (p *Package) Ref() string { return p.Owner + "/" + p.Name + ":" + p.Version }

// Repository is the OCI repository holding the package: OWNER/NAME.
func (p *Package) Repository() string { return p.Owner + "/" + p.Name }

// Ref is OWNER/NAME:VERSION.
func (e ExportEntry) Ref() string { return e.Owner + "/" + e.Name + ":" + e.Version }

// User is a hub account as the API shows it (PATCH /api/v1/users/{user}).
type User struct {
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
	MFA   bool   `json:"mfa"`
	// Disabled users cannot log in, and their tokens are refused.
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// OTP is the current TOTP code, required when the user has MFA on.
	OTP string `json:"otp,omitempty"`
	// TTL is the token lifetime in seconds; the hub's default if zero.
	TTL int64 `json:"ttl,omitempty"`
}

// Whoami is the body of GET /api/v1/whoami.
type Whoami struct {
	User  string `json:"user"`
	Admin bool   `json:"admin"`
	MFA   bool   `json:"mfa"`
	// Writable lists the owners with a grant the user can push to
	// (write or admin, directly or through a group; a site administrator
	// every one), sorted.
	Writable []string `json:"writable,omitempty"`
}

// ReviewRequest is the body of approve and reject.
type ReviewRequest struct {
	Comment string `json:"comment,omitempty"`
}

// AddUserRequest is the body of POST /api/v1/users. An empty Password
// makes the hub generate one, returned once.
type AddUserRequest struct {
	Name     string `json:"name"`
	Password string `json:"password,omitempty"`
	Admin    bool   `json:"admin,omitempty"`
}

// AddUserResponse answers POST /api/v1/users.
type AddUserResponse struct {
	Name     string `json:"name"`
	Password string `json:"password,omitempty"`
}

// MemberRequest is the body of POST /api/v1/groups/{group}/members.
type MemberRequest struct {
	User string `json:"user"`
}

// GrantRequest is the body of POST /api/v1/grants.
type GrantRequest struct {
	Owner string `json:"owner"`
	// Subject is "user:NAME", "group:NAME" or a user name.
	Subject string `json:"subject"`
	// Level is read, write, admin or none (revoke).
	Level string `json:"level"`
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name string `json:"name"`
	// TTL is the lifetime in seconds.
	TTL int64 `json:"ttl"`
}

// MFAEnrollment answers POST /api/v1/mfa/enroll.
type MFAEnrollment struct {
	Secret string `json:"secret"`
	URL    string `json:"url"`
}

// MFAEnrollRequest is the body of POST /api/v1/mfa/enroll: enrolling
// (or re-enrolling, which replaces the secret once confirmed) needs the
// password, and the current code when MFA is on, so that a stolen token
// alone cannot take the account over.
type MFAEnrollRequest struct {
	Password string `json:"password"`
	OTP      string `json:"otp,omitempty"`
}

// MFAConfirmRequest is the body of POST /api/v1/mfa/confirm.
type MFAConfirmRequest struct {
	OTP string `json:"otp"`
}

// GateResult is the outcome of one gate.
type GateResult struct {
	Name    string `json:"name"`
	Passed  bool   `json:"passed"`
	Message string `json:"message,omitempty"`
	// Details is what a gate recorded beyond its message (the
	// vulnerability gate: its findings), as JSON.
	Details json.RawMessage `json:"details,omitempty"`
}

// Approval is one reviewer's decision.
type Approval struct {
	User     string    `json:"user"`
	Decision string    `json:"decision"` // "approve" or "reject"
	Comment  string    `json:"comment,omitempty"`
	Time     time.Time `json:"time"`
}

// Package is a published package and its review state.
type Package struct {
	ID       int64              `json:"-"`
	Owner    string             `json:"owner"`
	Name     string             `json:"name"`
	Version  string             `json:"version"`
	Digest   string             `json:"digest"`
	Root     ocispec.Descriptor `json:"root"`
	Status   string             `json:"status"`
	Uploader string             `json:"uploader"`
	Created  time.Time          `json:"created"`
	Updated  time.Time          `json:"updated"`
	// Description is the package description (bundle.Description JSON),
	// set once the gates have read it.
	Description json.RawMessage      `json:"description,omitempty"`
	Signatures  []ocispec.Descriptor `json:"signatures,omitempty"`
	Gates       []GateResult         `json:"gates,omitempty"`
	Approvals   []Approval           `json:"approvals,omitempty"`
}

// Token is an issued API token; Secret is shown once.
type Token struct {
	Secret  string    `json:"token"`
	ID      int64     `json:"id"`
	User    string    `json:"user"`
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	Expires time.Time `json:"expires"`
}

// TokenInfo describes a stored token (never its secret).
type TokenInfo struct {
	ID      int64     `json:"id"`
	User    string    `json:"user"`
	Name    string    `json:"name"`
	Kind    string    `json:"kind"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// ExportManifest lists the packages of an export.
type ExportManifest struct {
	Format   string        `json:"format"`
	Created  time.Time     `json:"created"`
	Since    time.Time     `json:"since"`
	Packages []ExportEntry `json:"packages"`
	// Blobs are the members after the manifest, each stored once as
	// ExportBlobPath(digest), in this order.
	Blobs []ExportBlob `json:"blobs"`
	// Omitted are blobs the packages need that the export leaves out:
	// the receiving hub's inventory (hub export --against) listed them.
	Omitted []ExportBlob `json:"omitted,omitempty"`
}

// ExportEntry is one package of an export: its root and signature
// manifests (in the export's blobs or omitted) and, through them, every
// blob of its graph.
type ExportEntry struct {
	Owner   string `json:"owner"`
	Name    string `json:"name"`
	Version string `json:"version"`
	// Digest is the package root's digest.
	Digest string `json:"digest"`
	// Approved is when the package was approved (its last change).
	Approved time.Time `json:"approved"`
	// Signatures are the package's signature manifests.
	Signatures []string `json:"signatures,omitempty"`
	// Size is the size of every blob of the package, shared or not (what
	// an archive of it alone would carry, without tar headers).
	Size int64 `json:"size"`
}

// ExportBlob is one blob of an export.
type ExportBlob struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// ExportRequest is the body of POST /api/v1/export: export the approved
// packages changed since Since (zero: all), leaving out the blobs in
// Have (the receiving hub's inventory).
type ExportRequest struct {
	Since time.Time `json:"since"`
	Have  []string  `json:"have"`
}

// Inventory lists the blobs a hub holds for its published packages, for
// `hub export --against` on another hub.
type Inventory struct {
	Format  string    `json:"format"`
	Created time.Time `json:"created"`
	Blobs   []string  `json:"blobs"`
}

// ImportedPackage is the outcome of one package of an import.
type ImportedPackage struct {
	Package string       `json:"package"`
	Digest  string       `json:"digest"`
	Status  string       `json:"status"`
	Gates   []GateResult `json:"gates,omitempty"`
	// Error is why the package was not imported (a conflict with a
	// published version); other packages were.
	Error string `json:"error,omitempty"`
}

// ImportResult reports an import.
type ImportResult struct {
	Packages []ImportedPackage `json:"packages"`
}

// AuditEntry is one row of the hash-chained audit log. Hash is the
// sha256 of the canonical JSON array [seq, time, actor, action, target,
// details, prev_hash]; PrevHash is the previous entry's Hash ("" for the
// first).
type AuditEntry struct {
	Seq      int64  `json:"seq"`
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Target   string `json:"target"`
	Details  string `json:"details"`
	PrevHash string `json:"prevHash"`
	Hash     string `json:"hash"`
}

// AuditReport is the result of VerifyAudit.
type AuditReport struct {
	Entries int64  `json:"entries"`
	Head    string `json:"head"`
	OK      bool   `json:"ok"`
	// Problems describe each break of the chain found.
	Problems []string `json:"problems,omitempty"`
}

// RescanResult is the outcome for one package.
type RescanResult struct {
	Package string       `json:"package"`
	Digest  string       `json:"digest"`
	Before  string       `json:"before"`
	After   string       `json:"after"`
	Gates   []GateResult `json:"gates"`
}

// RescanRequest is the body of POST /api/v1/rescan: one package, or all.
type RescanRequest struct {
	Owner   string `json:"owner,omitempty"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
	All     bool   `json:"all,omitempty"`
}

// RescanResponse answers POST /api/v1/rescan.
type RescanResponse struct {
	Results []RescanResult `json:"results"`
}

// UserUpdate changes a user; nil fields are left alone.
type UserUpdate struct {
	// Admin grants or removes site administration.
	Admin *bool `json:"admin,omitempty"`
	// Disabled disables (and revokes the tokens of) or enables a user.
	Disabled *bool `json:"disabled,omitempty"`
}

// PasswordRequest is the body of POST /api/v1/password (change your
// own) and POST /api/v1/users/{user}/password (reset, by a site
// administrator: Password empty makes the hub generate one).
type PasswordRequest struct {
	// Current is your current password (change only).
	Current string `json:"current,omitempty"`
	// OTP is your current code, when MFA is on (change only).
	OTP      string `json:"otp,omitempty"`
	Password string `json:"password,omitempty"`
}
