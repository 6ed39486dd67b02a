package agent

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync/atomic"
	"time"
)

// Certificate defaults: a year of validity, renewed 90 days before the
// end, so that doctor's 30-day warning only fires when renewal is broken.
const (
	DefaultCertLifetime = 365 * 24 * time.Hour
	DefaultRenewBefore  = 90 * 24 * time.Hour
	// DefaultPropagation is how long a renewed CA sits in the webhook's
	// caBundle, next to the old one, before the agent serves the new
	// certificate: the API server must have seen the new bundle by then.
	DefaultPropagation = 30 * time.Second
)

// CertState is what the agent keeps in its Secret: the certificate it
// serves, the CA bundle the webhook trusts, and a staged successor.
type CertState struct {
	// Cert and Key are the served certificate and its key (PEM).
	Cert, Key []byte
	// CABundle holds every CA that signed a certificate still in use or
	// staged (PEM), newest first; it is the webhook's caBundle.
	CABundle []byte
	// NextCert and NextKey are a renewed certificate, served from
	// PromoteAt on. Empty when no renewal is under way.
	NextCert, NextKey []byte
	PromoteAt         time.Time
}

// CertStore keeps the state and publishes the CA bundle to the webhook
// configuration.
type CertStore interface {
	// Load returns the stored state, or nil when there is none yet.
	Load(ctx context.Context) (*CertState, error)
	Save(ctx context.Context, s *CertState) error
	PublishCABundle(ctx context.Context, bundle []byte) error
}

// CertOptions tune certificates and their renewal.
type CertOptions struct {
	// DNSNames and IPs are the serving certificate's names.
	DNSNames []string
	IPs      []net.IP
	// Lifetime of the CA and the serving certificate; zero means
	// DefaultCertLifetime.
	Lifetime time.Duration
	// RenewBefore: renewal starts when the served certificate has less
	// left than this; zero means DefaultRenewBefore (or a third of a
	// shorter Lifetime).
	RenewBefore time.Duration
	// Propagation: see DefaultPropagation; zero means that.
	Propagation time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o CertOptions) withDefaults() CertOptions {
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultCertLifetime
	}
	if o.RenewBefore <= 0 {
		o.RenewBefore = min(DefaultRenewBefore, o.Lifetime/3)
	}
	if o.Propagation <= 0 {
		o.Propagation = DefaultPropagation
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Check reports a renewal window that cannot work.
func (o CertOptions) Check() error {
	o = o.withDefaults()
	if o.RenewBefore >= o.Lifetime {
		return fmt.Errorf("renew-before %s is not shorter than the certificate lifetime %s: renew well before expiry, e.g. a quarter of the lifetime", o.RenewBefore, o.Lifetime)
	}
	if o.Propagation >= o.RenewBefore {
		return fmt.Errorf("propagation delay %s is not shorter than renew-before %s: the old certificate would expire before the new one is served", o.Propagation, o.RenewBefore)
	}
	return nil
}

// Rotator keeps a valid serving certificate: it issues one when there is
// none, and renews it before it expires without a moment in which the API
// server would not trust what the agent serves. It first adds the new CA
// to the webhook's caBundle next to the old one, then, after the
// propagation delay, serves the new certificate; expired CAs leave the
// bundle.
type Rotator struct {
	Store   CertStore
	Options CertOptions

	cur atomic.Pointer[tls.Certificate]
}

// GetCertificate is for tls.Config.
func (r *Rotator) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := r.cur.Load()
	if c == nil {
		return nil, errors.New("skiff agent: no serving certificate yet")
	}
	return c, nil
}

// Current returns the served certificate, or nil.
func (r *Rotator) Current() *x509.Certificate {
	c := r.cur.Load()
	if c == nil {
		return nil
	}
	return c.Leaf
}

// Reconcile brings the stored state, the webhook's caBundle and the served
// certificate up to date once.
func (r *Rotator) Reconcile(ctx context.Context) error {
	o := r.Options.withDefaults()
	now := o.Now()
	st, err := r.Store.Load(ctx)
	if err != nil {
		return err
	}
	changed := false
	if st == nil || len(st.Cert) == 0 {
		cert, key, ca, err := Issue(o, now)
		if err != nil {
			return err
		}
		st, changed = &CertState{Cert: cert, Key: key, CABundle: ca}, true
	}
	leaf, err := leafOf(st.Cert)
	if err != nil {
		return fmt.Errorf("stored serving certificate: %w", err)
	}
	switch {
	case len(st.NextCert) > 0 && !now.Before(st.PromoteAt):
		st.Cert, st.Key, st.NextCert, st.NextKey, st.PromoteAt = st.NextCert, st.NextKey, nil, nil, time.Time{}
		changed = true
	case len(st.NextCert) == 0 && leaf.NotAfter.Sub(now) <= o.RenewBefore:
		cert, key, ca, err := Issue(o, now)
		if err != nil {
			return err
		}
		st.NextCert, st.NextKey, st.PromoteAt = cert, key, now.Add(o.Propagation)
		st.CABundle = append(ca, st.CABundle...)
		changed = true
	}
	if b := pruneExpired(st.CABundle, now); !bytes.Equal(b, st.CABundle) {
		st.CABundle, changed = b, true
	}
	// Publish the bundle before saving and serving: a new CA is trusted
	// before anything signed by it is served.
	if err := r.Store.PublishCABundle(ctx, st.CABundle); err != nil {
		return err
	}
	if changed {
		if err := r.Store.Save(ctx, st); err != nil {
			return err
		}
	}
	kp, err := tls.X509KeyPair(st.Cert, st.Key)
	if err != nil {
		return fmt.Errorf("stored serving certificate: %w", err)
	}
	if cur := r.cur.Load(); cur == nil || !bytes.Equal(cur.Certificate[0], kp.Certificate[0]) {
		r.cur.Store(&kp)
	}
	return nil
}

// Interval is how often Run reconciles: often enough to promote a staged
// certificate on time.
func (r *Rotator) Interval() time.Duration {
	o := r.Options.withDefaults()
	return max(min(o.Propagation/2, o.RenewBefore/8, time.Minute), 100*time.Millisecond)
}

// Run reconciles every Interval until ctx ends; errors go to onErr and are
// retried at the next tick.
func (r *Rotator) Run(ctx context.Context, onErr func(error)) {
	t := time.NewTicker(r.Interval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Reconcile(ctx); err != nil && onErr != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}

// Issue makes a new CA and a serving certificate signed by it, both valid
// for o.Lifetime from now, and returns the certificate, its key and the CA
// certificate, all PEM.
func Issue(o CertOptions, now time.Time) (cert, key, ca []byte, err error) {
	o = o.withDefaults()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
		return n
	}
	notBefore := now.Add(-time.Minute)
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "skiff agent CA " + now.UTC().Format(time.RFC3339)},
		NotBefore: notBefore, NotAfter: now.Add(o.Lifetime),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	cn := "skiff-agent"
	if len(o.DNSNames) > 0 {
		cn = o.DNSNames[0]
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: now.Add(o.Lifetime),
		DNSNames: o.DNSNames, IPAddresses: o.IPs,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

func leafOf(certPEM []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// pruneExpired drops the expired certificates of a PEM bundle.
func pruneExpired(bundle []byte, now time.Time) []byte {
	var out []byte
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil || !now.Before(c.NotAfter) {
			continue
		}
		out = append(out, pem.EncodeToMemory(b)...)
	}
	return out
}
