package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/hubapi"
)

// The client maps codes back to errors with ErrorForCode: both directions
// must agree.
func TestErrorCodesRoundTrip(t *testing.T) {
	for _, code := range []string{CodeUnauthorized, CodeOTPRequired, CodeRateLimited, CodeForbidden, CodeNotFound, CodeConflict, CodeInvalid, CodeAuditFailed} {
		err := ErrorForCode(code)
		if err == nil {
			t.Errorf("ErrorForCode(%q) = nil", code)
			continue
		}
		_, got := errorStatus(fmt.Errorf("wrapped: %w", err))
		if got != code {
			t.Errorf("errorStatus(%v) = %q, want %q", err, got, code)
		}
	}
	if ErrorForCode(CodeInternal) != nil {
		t.Error("internal has no sentinel")
	}
}

// The API answers with a User; clients decode it as hubapi.User: every
// field the hub sends must be one the client knows.
func TestUserWireForm(t *testing.T) {
	b, err := json.Marshal(User{Name: "ann", Admin: true, MFA: true, Disabled: true, Created: time.Unix(1, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var u hubapi.User
	if err := dec.Decode(&u); err != nil {
		t.Fatalf("hubapi.User does not match hub.User %s: %v", b, err)
	}
	if back, _ := json.Marshal(u); !bytes.Equal(back, b) {
		t.Errorf("round trip: %s, want %s", back, b)
	}
}
