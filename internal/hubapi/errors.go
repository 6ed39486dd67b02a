// Package hubapi is the wire format of the hub's JSON API (/api/v1): its
// request and response bodies, error codes and the sentinel errors they
// stand for, and the export format. The hub server (internal/hub) and
// its client (internal/hubclient) both use it, so the client does not
// pull in the server's storage and database dependencies.
package hubapi

import "errors"

// APIError is the JSON API's error body.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of the JSON API.
const (
	CodeUnauthorized = "unauthorized"
	CodeOTPRequired  = "otp_required"
	CodeRateLimited  = "rate_limited"
	CodeForbidden    = "forbidden"
	CodeNotFound     = "not_found"
	CodeConflict     = "conflict"
	CodeInvalid      = "invalid"
	CodeInternal     = "internal"
	// CodeAuditFailed (status 500): the audit log could not be appended
	// to, so the change was not made.
	CodeAuditFailed = "audit_failed"
)

// Sentinel errors the API error codes stand for.
var (
	ErrNotFound     = errors.New("not found")
	ErrUnauthorized = errors.New("authentication required")
	ErrForbidden    = errors.New("permission denied")
	ErrRateLimited  = errors.New("too many failed logins")
	ErrOTPRequired  = errors.New("a one-time code is required")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid request")
	// ErrAuditFailed reports that an audit entry could not be appended.
	// A state change the audit log records is then not made: the change
	// and its entry are committed in one transaction, or neither is.
	ErrAuditFailed = errors.New("the hub could not append to its audit log")
)

// codeErrors are the sentinel errors API error codes stand for.
var codeErrors = map[string]error{
	CodeUnauthorized: ErrUnauthorized,
	CodeOTPRequired:  ErrOTPRequired,
	CodeRateLimited:  ErrRateLimited,
	CodeForbidden:    ErrForbidden,
	CodeNotFound:     ErrNotFound,
	CodeConflict:     ErrConflict,
	CodeInvalid:      ErrInvalid,
	CodeAuditFailed:  ErrAuditFailed,
}

// ErrorForCode returns the sentinel error an API error code stands for,
// or nil, so clients can match hub errors with errors.Is.
func ErrorForCode(code string) error { return codeErrors[code] }
