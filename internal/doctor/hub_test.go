package doctor_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/internal/doctor"
	"github.com/skiffhq/skiff/internal/hub"
)

// TestDoctorRealHub runs the hub check against a real hub: healthy while
// it serves, failing once its database is gone.
func TestDoctorRealHub(t *testing.T) {
	ctx := context.Background()
	h, err := hub.New(ctx, hub.Options{Root: t.TempDir(), AllowUnsigned: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	hubCheck := func() *doctor.Result {
		t.Helper()
		var checks []doctor.Check
		for _, c := range doctor.Checks() {
			if c.Name == "hub" {
				checks = append(checks, c)
			}
		}
		rep, err := doctor.Run(ctx, doctor.Options{Checks: checks, Hub: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Results) != 1 {
			t.Fatalf("results %+v, want one", rep.Results)
		}
		return &rep.Results[0]
	}
	if r := hubCheck(); r.Severity != doctor.OK || !strings.Contains(r.Message, "healthy") {
		t.Errorf("serving hub: %+v, want OK", r)
	}
	h.Close() // the database is gone
	if r := hubCheck(); r.Severity != doctor.Fail || !strings.Contains(r.Message, "database unreachable") {
		t.Errorf("hub without its database: %+v, want a failure naming the database", r)
	}
}
