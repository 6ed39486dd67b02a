package release

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func fullRecord() *Record {
	r := rec("demo", "shop", 3, StatusDeployed)
	r.Components = []Component{
		{Name: "db", Kind: KindChart, Namespace: "demo", HelmRelease: "shop-db", HelmRevision: 2,
			Objects: []Object{{Group: "apps", Version: "v1", Kind: "StatefulSet", Namespace: "demo", Name: "db"}}},
		{Name: "web", Kind: KindManifests, Manifest: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
			Objects: []Object{{Version: "v1", Kind: "ConfigMap", Namespace: "demo", Name: "web"}}},
	}
	r.Images = map[string]string{"docker.io/library/nginx:1.27": "registry.local:5000/library/nginx:1.27"}
	r.Values = map[string]any{"replicas": 2.0, "db": map[string]any{"password": "REDACTED"}, "list": []any{"a", true}}
	r.Dependencies = []string{"infra/postgres"}
	r.Description = "Upgrade complete"
	r.Created = epoch
	r.Updated = epoch.Add(time.Minute)
	return r
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	want := fullRecord()
	payload, err := encodeRecord(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}

func TestEncodeTooLarge(t *testing.T) {
	r := fullRecord()
	noise := make([]byte, 1200<<10) // base64 carries 6 random bits a byte: zstd cannot get it under 1 MiB
	rand.Read(noise)
	r.Components[1].Manifest = base64.StdEncoding.EncodeToString(noise)
	_, err := encodeRecord(r)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "limit of a Secret") {
		t.Fatalf("err = %v, want ErrTooLarge naming the Secret limit", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	z := func(s string) []byte { return encoder.EncodeAll([]byte(s), nil) }
	valid := `{"deployment":"a","namespace":"b","revision":1,"status":"deployed"}`
	tests := []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"not zstd", []byte(valid)},
		{"not json", z("hello")},
		{"trailing data", z(valid + valid)},
		{"wrong types", z(`{"deployment":1}`)},
		{"invalid status", z(strings.Replace(valid, "deployed", "asleep", 1))},
		{"zero revision", z(strings.Replace(valid, `"revision":1`, `"revision":0`, 1))},
		{"bad name", z(strings.Replace(valid, `"a"`, `"A_B"`, 1))},
		{"bomb", z(`{"description":"` + strings.Repeat("x", maxDecoded+1) + `"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeRecord(tt.payload); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := decodeRecord(z(valid)); err != nil {
		t.Errorf("valid payload: %v", err)
	}
}

func TestSecretLayout(t *testing.T) {
	r := fullRecord()
	s, err := toSecret(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "skiff.release.v1.shop.v3" || s.Namespace != "demo" || s.Type != SecretType {
		t.Errorf("secret = %s/%s type %s", s.Namespace, s.Name, s.Type)
	}
	wantLabels := map[string]string{LabelOwner: "skiff", LabelDeployment: "shop", LabelRevision: "3", LabelStatus: "deployed", LabelPackage: "demo"}
	if !reflect.DeepEqual(s.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", s.Labels, wantLabels)
	}
	got, err := fromSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("fromSecret(toSecret(r)) = %+v", got)
	}
	// a record stored under another record's name is refused
	s.Name = SecretName("shop", 4)
	if _, err := fromSecret(s); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "kubectl delete secret") {
		t.Errorf("misplaced record: err = %v", err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	payload, err := encodeRecord(fullRecord())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(payload)
	f.Add([]byte{})
	f.Add(encoder.EncodeAll([]byte(`{"deployment":"a","namespace":"b","revision":1,"status":"deployed","values":{"x":[1,{"y":null}]}}`), nil))
	f.Add(encoder.EncodeAll([]byte(`null`), nil))
	f.Add(payload[:len(payload)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := decodeRecord(data)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decodeRecord accepted an invalid record: %v", err)
		}
		// what decodes must re-encode and decode to the same record
		again, err := encodeRecord(r)
		if err != nil {
			return // too large after re-encoding is possible; not a decoder bug
		}
		r2, err := decodeRecord(again)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		b1, _ := zstd.NewReader(nil)
		defer b1.Close()
		j1, _ := b1.DecodeAll(again, nil)
		j2, _ := encodeRecord(r2)
		j2d, _ := b1.DecodeAll(j2, nil)
		if !bytes.Equal(j1, j2d) {
			t.Fatalf("unstable round trip:\n%s\n%s", j1, j2d)
		}
	})
}
