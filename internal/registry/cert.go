package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/skiffhq/skiff/internal/atomicfile"
)

// Names of the files SelfSignedCert writes into its directory.
const (
	CertFileName = "registry.crt"
	KeyFileName  = "registry.key"
)

// certLifetime is how long a generated certificate is valid; a
// certificate is regenerated when less than certMinRemaining is left.
const (
	certLifetime     = 365 * 24 * time.Hour
	certMinRemaining = 24 * time.Hour
)

// SelfSignedCert returns a certificate and key (PEM files in dir) valid for
// 127.0.0.1, ::1, localhost and hosts. An existing pair in dir is reused
// when it is still valid for at least a day and covers every host;
// otherwise a new ECDSA P-256 pair valid for one year is written. The
// certificate is its own CA: clients trust it by adding the certificate
// file to their roots.
func SelfSignedCert(hosts []string, dir string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, CertFileName)
	keyFile = filepath.Join(dir, KeyFileName)
	names := certHosts(hosts)
	if reusable(certFile, keyFile, names) {
		return certFile, keyFile, nil
	}
	certPEM, keyPEM, err := generateCert(names, time.Now())
	if err != nil {
		return "", "", fmt.Errorf("registry: generating certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("registry: %w", err)
	}
	if err := atomicfile.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", fmt.Errorf("registry: writing key: %w", err)
	}
	if err := atomicfile.WriteFile(certFile, certPEM, 0o644); err != nil {
		return "", "", fmt.Errorf("registry: writing certificate: %w", err)
	}
	return certFile, keyFile, nil
}

func certHosts(hosts []string) []string {
	names := []string{"127.0.0.1", "::1", "localhost"}
	for _, h := range hosts {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		if h != "" && !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	return names
}

func reusable(certFile, keyFile string, names []string) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return false
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return false
	}
	if time.Until(cert.NotAfter) < certMinRemaining || time.Now().Before(cert.NotBefore) {
		return false
	}
	for _, n := range names {
		if cert.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

func generateCert(names []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "skiff registry", Organization: []string{"skiff"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}
