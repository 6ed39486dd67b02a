package hub

import (
	"fmt"
	"testing"
)

// The client maps codes back to errors with ErrorForCode: both directions
// must agree.
func TestErrorCodesRoundTrip(t *testing.T) {
	for code, err := range codeErrors {
		_, got := errorStatus(fmt.Errorf("wrapped: %w", err))
		if got != code {
			t.Errorf("errorStatus(%v) = %q, want %q", err, got, code)
		}
		if ErrorForCode(code) != err {
			t.Errorf("ErrorForCode(%q) = %v, want %v", code, ErrorForCode(code), err)
		}
	}
	if ErrorForCode(CodeInternal) != nil {
		t.Error("internal has no sentinel")
	}
}
