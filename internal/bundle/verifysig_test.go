package bundle

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/skiffhq/skiff/internal/sign"
)

func TestVerifySignature(t *testing.T) {
	ctx := context.Background()
	signer, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := sign.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	trust := sign.NewTrust(sign.TrustedKey{ID: signer.Public().ID(), Key: signer.Public()})
	p := buildPackage(t, buildOptions{})

	tests := []struct {
		name    string
		keys    []*sign.PrivateKey
		wantErr error // nil: verified by signer
	}{
		{"unsigned", nil, sign.ErrUnsigned},
		{"untrusted", []*sign.PrivateKey{other}, sign.ErrUnknownKey},
		{"trusted", []*sign.PrivateKey{other, signer}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := writePackage(t, p, t.TempDir(), WriteOptions{})
			for _, k := range tt.keys {
				env, err := sign.Sign(ctx, k, sign.Subject{Name: "demo:1.0.0", Digest: p.root.Digest}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := AddSignature(ctx, out, env); err != nil {
					t.Fatal(err)
				}
			}
			a, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			v, err := a.VerifySignature(ctx, trust)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want an error wrapping %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := signer.Public().ID(); !slices.Equal(v.KeyIDs, []string{want}) {
				t.Errorf("KeyIDs: got %v, want [%s]", v.KeyIDs, want)
			}
		})
	}
}
