package cosign_test

import (
	"crypto"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/skiffhq/skiff/internal/cosign"
	"github.com/skiffhq/skiff/internal/cosign/cosigntest"
	"github.com/skiffhq/skiff/internal/fixture"
)

func TestVerify(t *testing.T) {
	host := fixture.Registry(t)
	ecKey, ecPub := cosigntest.NewECDSAKey(t)
	edKey, edPub := cosigntest.NewEd25519Key(t)
	_, otherPub := cosigntest.NewECDSAKey(t)
	push := func(name string, seed int64) digest.Digest {
		return fixture.PushImage(t, host+"/cs/"+name+":1", fixture.ImageOptions{Layers: []int{64}, Platforms: []string{"linux/amd64"}, Seed: seed}).Digest
	}
	signed, edSigned, unsigned, wrongDigest, keyless := push("ec", 1), push("ed", 2), push("none", 3), push("wrong", 4), push("keyless", 5)
	cosigntest.SignKeyless(t, host+"/cs/keyless", keyless)
	cosigntest.Sign(t, host+"/cs/ec", signed, signed, ecKey)
	cosigntest.Sign(t, host+"/cs/ed", edSigned, edSigned, edKey)
	cosigntest.Sign(t, host+"/cs/wrong", wrongDigest, signed, ecKey) // a copied signature of another image

	for _, tc := range []struct {
		name string
		repo string
		d    digest.Digest
		pub  []byte
		want error
	}{
		{"ecdsa", "ec", signed, ecPub, nil},
		{"ed25519", "ed", edSigned, edPub, nil},
		{"other key", "ec", signed, otherPub, cosign.ErrMisSigned},
		{"ed25519 sig, ecdsa key", "ed", edSigned, ecPub, cosign.ErrMisSigned},
		{"unsigned", "none", unsigned, ecPub, cosign.ErrUnsigned},
		{"signature of another digest", "wrong", wrongDigest, ecPub, cosign.ErrMisSigned},
		{"keyless only", "keyless", keyless, ecPub, cosign.ErrKeyless},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo, err := remote.NewRepository(host + "/cs/" + tc.repo)
			if err != nil {
				t.Fatal(err)
			}
			repo.PlainHTTP = true
			var key crypto.PublicKey
			if key, err = cosign.ParsePublicKey(tc.pub); err != nil {
				t.Fatal(err)
			}
			err = cosign.Verify(t.Context(), repo, tc.d, key)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := cosign.ParsePublicKey([]byte("not pem")); err == nil {
		t.Error("ParsePublicKey accepted garbage")
	}
}
