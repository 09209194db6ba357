package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"slices"
	"testing"
	"time"
)

// testCertificates returns the server's kind of certificate (ECDSA, from
// selfSign) and an RSA one, so that every suite's key exchange has a
// certificate it can use: a refusal then comes from the suite alone.
func testCertificates(t *testing.T) []tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := selfSign("localhost", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ec, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return []tls.Certificate{ec, {Certificate: [][]byte{der}, PrivateKey: key}}
}

// handshake runs a TLS handshake between client and server over net.Pipe and
// returns the client's connection state or the first error.
func handshake(server, client *tls.Config) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	srvErr := make(chan error, 1)
	go func() {
		s := tls.Server(sc, server)
		err := s.HandshakeContext(ctx)
		sc.Close()
		srvErr <- err
	}()
	c := tls.Client(cc, client)
	err := c.HandshakeContext(ctx)
	state := c.ConnectionState()
	cc.Close()
	if serr := <-srvErr; err == nil {
		err = serr
	}
	return state, err
}

// suiteClient offers exactly one suite at TLS 1.2 (or only TLS 1.3 for the
// TLS 1.3 suites, which crypto/tls always offers together).
func suiteClient(s *tls.CipherSuite) *tls.Config {
	c := &tls.Config{InsecureSkipVerify: true} // the suite is under test, not the certificate
	if slices.Contains(s.SupportedVersions, tls.VersionTLS13) {
		c.MinVersion = tls.VersionTLS13
		return c
	}
	c.MinVersion = tls.VersionTLS10
	c.MaxVersion = tls.VersionTLS12
	c.CipherSuites = []uint16{s.ID}
	return c
}

// allowedSuite is the rule the server promises: TLS 1.3, or TLS 1.2 with
// ECDHE key exchange and an AEAD cipher.
func allowedSuite(s *tls.CipherSuite) bool {
	if slices.Equal(s.SupportedVersions, []uint16{tls.VersionTLS13}) {
		return true
	}
	switch s.ID {
	case tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}

// TestTLSSuites enumerates every suite crypto/tls knows, secure and
// insecure: the server's tlsConfig accepts each AEAD suite with ECDHE (and
// every TLS 1.3 suite) and refuses every other one. A control server that
// enables the refused suite shows that the client really offered it, so the
// refusal is the server's.
func TestTLSSuites(t *testing.T) {
	certs := testCertificates(t)
	server := tlsConfig(certs[0])
	server.Certificates = certs
	all := append(tls.CipherSuites(), tls.InsecureCipherSuites()...)
	var accepted, refused int
	for _, s := range all {
		t.Run(s.Name, func(t *testing.T) {
			state, err := handshake(server, suiteClient(s))
			if allowedSuite(s) {
				accepted++
				if err != nil {
					t.Fatalf("allowed suite refused: %v", err)
				}
				if !slices.Contains(s.SupportedVersions, tls.VersionTLS13) && state.CipherSuite != s.ID {
					t.Fatalf("negotiated %s", tls.CipherSuiteName(state.CipherSuite))
				}
				return
			}
			refused++
			if err == nil {
				t.Fatalf("weak suite accepted (%s)", tls.VersionName(state.Version))
			}
			control := &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS10,
				MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{s.ID}}
			if _, err := handshake(control, suiteClient(s)); err != nil {
				// crypto/tls cannot negotiate it at all (e.g. RC4 under
				// TLS 1.2 rules): refused either way.
				t.Logf("control server could not use it either: %v", err)
			}
		})
	}
	if accepted != 9 || refused == 0 {
		t.Errorf("%d suites accepted (want the 6 TLS 1.2 AEAD + 3 TLS 1.3), %d refused", accepted, refused)
	}
}

// TestTLSVersions: TLS 1.3 is chosen when the client offers it; TLS 1.1 and
// older are refused.
func TestTLSVersions(t *testing.T) {
	certs := testCertificates(t)
	server := tlsConfig(certs[0])
	state, err := handshake(server, &tls.Config{InsecureSkipVerify: true})
	if err != nil || state.Version != tls.VersionTLS13 {
		t.Fatalf("default client: %s, %v; want TLS 1.3", tls.VersionName(state.Version), err)
	}
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if _, err := handshake(server, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}); err == nil {
			t.Errorf("%s accepted", tls.VersionName(v))
		}
	}
}

// TestTLSListeners checks the rule on the running server's three ports
// (XMPP STARTTLS, XMPP direct TLS, HTTPS): the CBC suite of the issue is refused, an AEAD suite
// at TLS 1.2 is accepted, and a default client gets TLS 1.3.
func TestTLSListeners(t *testing.T) {
	ts := startTestServer(t)
	for _, addr := range []string{ts.C2S, ts.C2STLS, ts.httpLn.Addr().String()} {
		for _, tc := range []struct {
			name    string
			suites  []uint16
			max     uint16
			ok      bool
			version uint16
		}{
			{"ECDHE-ECDSA-AES128-SHA", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}, tls.VersionTLS12, false, 0},
			{"ECDHE-ECDSA-AES256-SHA", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}, tls.VersionTLS12, false, 0},
			{"ECDHE-ECDSA-AES128-GCM-SHA256", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, tls.VersionTLS12, true, tls.VersionTLS12},
			{"default", nil, 0, true, tls.VersionTLS13},
		} {
			cfg := ts.TLSConfig.Clone()
			cfg.CipherSuites, cfg.MaxVersion = tc.suites, tc.max
			c, err := dialTLS(t, addr, addr == ts.C2S, cfg)
			if !tc.ok {
				if err == nil {
					c.Close()
					t.Errorf("%s: %s accepted", addr, tc.name)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %s refused: %v", addr, tc.name, err)
				continue
			}
			if v := c.(*tls.Conn).ConnectionState().Version; v != tc.version {
				t.Errorf("%s: %s negotiated %s", addr, tc.name, tls.VersionName(v))
			}
			c.Close()
		}
	}
}

// dialTLS opens a TLS connection to addr; with startTLS it first negotiates
// XMPP STARTTLS (RFC 6120 §5) in plaintext.
func dialTLS(t *testing.T, addr string, startTLS bool, cfg *tls.Config) (net.Conn, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(testTimeout))
	if startTLS {
		fmt.Fprint(conn, `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>`)
		if err := readUntil(conn, "</stream:features>"); err != nil {
			conn.Close()
			t.Fatalf("STARTTLS features: %v", err)
		}
		fmt.Fprint(conn, `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
		err = readUntil(conn, "<proceed")
		if err == nil {
			err = readUntil(conn, ">") // the end of <proceed …/>
		}
		if err != nil {
			conn.Close()
			t.Fatalf("STARTTLS proceed: %v", err)
		}
	}
	c := tls.Client(conn, cfg)
	if err := c.Handshake(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// readUntil reads conn byte by byte (nothing past the marker, so that the
// TLS handshake starts on a clean stream) until marker was read.
func readUntil(conn net.Conn, marker string) error {
	var got []byte
	b := make([]byte, 1)
	for !bytes.Contains(got, []byte(marker)) {
		if _, err := conn.Read(b); err != nil {
			return fmt.Errorf("%w after %q", err, got)
		}
		got = append(got, b[0])
	}
	return nil
}
