package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Names of the self-signed certificate files in the data directory.
const (
	selfSignedCert = "cert.pem"
	selfSignedKey  = "key.pem" // mode 0600
)

// loadCertificate returns the configured certificate, or the self-signed one
// in the data directory, creating it on first start.
func loadCertificate(cfg Config) (tls.Certificate, error) {
	if cfg.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return c, fmt.Errorf("load -cert/-key: %w", err)
		}
		return c, nil
	}
	certPath := filepath.Join(cfg.DataDir, selfSignedCert)
	keyPath := filepath.Join(cfg.DataDir, selfSignedKey)
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		return c, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return c, fmt.Errorf("load self-signed certificate: %w", err)
	}
	certPEM, keyPEM, err := selfSign(cfg.Domain, cfg.Now())
	if err != nil {
		return c, err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return c, fmt.Errorf("write key: %w", err)
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return c, fmt.Errorf("write certificate: %w", err)
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// selfSign makes an ECDSA P-256 certificate valid for the domain, its
// service subdomains and the loopback addresses, for two years.
func selfSign(domain string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: domain},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{domain, uploadHost(domain), conferenceHost(domain),
			"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that a client may trust it as its own root
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// aeadSuites are the TLS 1.2 cipher suites the server accepts: ephemeral
// ECDHE key exchange (forward secrecy) with an AEAD cipher (AES-GCM or
// ChaCha20-Poly1305). CBC suites (SHA-1 or SHA-256 MACs), RSA key exchange,
// 3DES and RC4 are refused. TLS 1.3 suites are all AEAD and are not
// configurable in crypto/tls.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// tlsConfig is the TLS configuration of every listener (XMPP STARTTLS,
// direct TLS and HTTPS): TLS 1.3, or TLS 1.2 with the AEAD suites of
// aeadSuites only. crypto/tls negotiates the highest version both sides
// support, so TLS 1.3 is chosen whenever the client offers it.
func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: aeadSuites,
	}
}

func uploadHost(domain string) string     { return "upload." + domain }
func conferenceHost(domain string) string { return "conference." + domain }
