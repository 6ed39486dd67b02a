package spec

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrNotFound means there is no skiff.yaml at the given path.
	ErrNotFound = errors.New("skiff.yaml not found")
	// ErrSyntax means the file is not well-formed YAML.
	ErrSyntax = errors.New("invalid YAML")
	// ErrUnknownAPIVersion means apiVersion is missing or not one this
	// version of skiff reads.
	ErrUnknownAPIVersion = errors.New("unknown apiVersion")
	// ErrUnknownKind means kind is missing or is not Package.
	ErrUnknownKind = errors.New("unknown kind")
	// ErrInvalid means the spec decoded but breaks one or more rules. The
	// error is a *ValidationError that lists every problem.
	ErrInvalid = errors.New("invalid package spec")
)

// FieldError is one problem at one place in skiff.yaml.
type FieldError struct {
	// Path is the field path, like "charts[0].repo"; empty for the
	// document as a whole.
	Path string
	// Line and Column locate the problem (1-based); 0 when unknown.
	Line, Column int
	// Message says what is wrong and how to fix it.
	Message string
}

func (e FieldError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d:%d: ", e.Line, e.Column)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// ValidationError lists every problem found while decoding or validating
// a spec. errors.Is(err, ErrInvalid) reports true for it.
type ValidationError struct {
	// File is the spec's path, or "skiff.yaml" when it was parsed from
	// memory.
	File   string
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	file := e.File
	if file == "" {
		file = "skiff.yaml"
	}
	if len(e.Errors) == 1 {
		return fmt.Sprintf("invalid %s: %s", file, e.Errors[0].Error())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid %s (%d problems):", file, len(e.Errors))
	for _, fe := range e.Errors {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// docError is an error about the document as a whole (syntax, apiVersion,
// kind), wrapping one of the sentinels.
type docError struct {
	file         string
	line, column int
	msg          string
	err          error
}

func (e *docError) Error() string {
	file := e.file
	if file == "" {
		file = "skiff.yaml"
	}
	if e.line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", file, e.line, e.column, e.msg)
	}
	return fmt.Sprintf("%s: %s", file, e.msg)
}

func (e *docError) Unwrap() error { return e.err }
