// Package sign signs and verifies Skiff packages.
//
// A signature is a DSSE envelope (payload type application/vnd.in-toto+json)
// over an in-toto v1 Statement whose subject is the package root digest and
// whose predicate type is https://skiff.dev/package/v1. Keys are ed25519.
// The archive code stores the envelope bytes; this package only produces and
// checks them.
package sign

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// Constants of the signed statement and its envelope.
const (
	// PayloadType is the DSSE payload type of a Skiff signature.
	PayloadType = "application/vnd.in-toto+json"
	// StatementType is the in-toto Statement type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType is the predicate type of a Skiff package statement.
	PredicateType = "https://skiff.dev/package/v1"
)

// Subject names what is signed: the package ("name:version") and its root
// digest.
type Subject struct {
	Name   string
	Digest digest.Digest
}

// Statement is an in-toto v1 Statement.
type Statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     json.RawMessage      `json:"predicate,omitempty"`
}

// ResourceDescriptor is an in-toto subject: a name and digests keyed by
// algorithm ("sha256": hex).
type ResourceDescriptor struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// Covers reports whether one of the statement's subjects has digest d.
func (s *Statement) Covers(d digest.Digest) bool {
	for _, sub := range s.Subject {
		if v, ok := sub.Digest[d.Algorithm().String()]; ok && v == d.Encoded() {
			return true
		}
	}
	return false
}

// Sign returns a DSSE envelope (JSON) holding one signature by key over an
// in-toto Statement for subject with predicate (JSON-encoded; nil gives {}).
func Sign(ctx context.Context, key *PrivateKey, subject Subject, predicate any) ([]byte, error) {
	if key == nil {
		return nil, errors.New("signing: no private key")
	}
	if subject.Name == "" {
		return nil, errors.New("signing: subject has no name")
	}
	if err := subject.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("signing: subject digest %q: %w", subject.Digest, err)
	}
	pred := json.RawMessage("{}")
	if predicate != nil {
		b, err := json.Marshal(predicate)
		if err != nil {
			return nil, fmt.Errorf("signing: encoding predicate: %w", err)
		}
		pred = b
	}
	st := Statement{
		Type: StatementType,
		Subject: []ResourceDescriptor{{
			Name:   subject.Name,
			Digest: map[string]string{subject.Digest.Algorithm().String(): subject.Digest.Encoded()},
		}},
		PredicateType: PredicateType,
		Predicate:     pred,
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("signing: encoding statement: %w", err)
	}
	es, err := dsse.NewEnvelopeSigner(&signerVerifier{priv: key.key, pub: key.pub})
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	env, err := es.SignPayload(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	out, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("signing: encoding envelope: %w", err)
	}
	return out, nil
}

// EnvelopeInfo is what an envelope claims, before any verification.
type EnvelopeInfo struct {
	KeyIDs    []string // keyid of each signature, "" when absent
	Statement Statement
}

// Inspect decodes an envelope without verifying it, to show who claims to
// have signed what. Never trust its result; use Trust.Verify.
func Inspect(envelope []byte) (*EnvelopeInfo, error) {
	env, payload, err := decodeEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	st, err := decodeStatement(payload)
	if err != nil {
		return nil, err
	}
	info := &EnvelopeInfo{Statement: *st}
	for _, s := range env.Signatures {
		info.KeyIDs = append(info.KeyIDs, s.KeyID)
	}
	return info, nil
}

// signerVerifier implements dsse.SignerVerifier over crypto/ed25519.
type signerVerifier struct {
	priv ed25519.PrivateKey // nil when only verifying
	pub  *PublicKey
}

var _ dsse.SignerVerifier = (*signerVerifier)(nil)

func (s *signerVerifier) Sign(_ context.Context, data []byte) ([]byte, error) {
	if s.priv == nil {
		return nil, errors.New("no private key")
	}
	return ed25519.Sign(s.priv, data), nil
}

func (s *signerVerifier) Verify(_ context.Context, data, sig []byte) error {
	if !ed25519.Verify(s.pub.key, data, sig) {
		return ErrBadSignature
	}
	return nil
}

func (s *signerVerifier) KeyID() (string, error) { return s.pub.id, nil }

func (s *signerVerifier) Public() crypto.PublicKey { return s.pub.key }
