package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"chatbx.eu/privacy/internal/prosodytest"
	"chatbx.eu/privacy/internal/testclock"
)

// selfSigned writes a certificate for localhost and 127.0.0.1 and its key
// to dir and returns their paths and a pool trusting it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost", "upload.localhost", "files.localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// interop is one Prosody with uploadd beside it.
type interop struct {
	app      *app
	clock    *testclock.Clock
	prosody  *prosodytest.Prosody
	c2s      string
	pool     *x509.CertPool
	base     string
	erased   chan int // status of each admin request, once answered
	password string
	data     string // Prosody's data_path
}

// startInterop starts Prosody (internal/prosodytest: its own directory,
// loopback ports, a self-signed certificate, mod_http_file_share in
// external mode pointing at uploadd, our mod_uploadd_erase, a component
// port), creates a user with prosodyctl, and starts uploadd (with a
// component) beside it; t.Cleanup stops both.
func startInterop(t *testing.T) *interop {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	c2s, comp := prosodytest.FreePort(t), prosodytest.FreePort(t)
	pub, adm := prosodytest.FreePort(t), prosodytest.FreePort(t)
	base := fmt.Sprintf("https://127.0.0.1:%d/files", pub)
	const shareSecret, compSecret = "share-secret-0123456789", "component-secret-0123"
	modDir, err := filepath.Abs("prosody")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
plugin_paths = { %[1]q }
component_interface = "127.0.0.1"
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "user_account_management", "uploadd_erase" }
modules_disabled = { "s2s" }
authentication = "internal_hashed"
c2s_require_encryption = true
ssl = { certificate = %[2]q, key = %[3]q }
uploadd_admin_url = "http://127.0.0.1:%[4]d"
uploadd_admin_secret = %[5]q
uploadd_file_share_host = "upload.localhost"

VirtualHost "localhost"

Component "upload.localhost" "http_file_share"
	http_file_share_base_url = %[6]q
	http_file_share_secret = %[7]q

Component "files.localhost"
	component_secret = %[8]q
`, modDir, certFile, keyFile, adm, adminSecret, base, shareSecret, compSecret)
	p := prosodytest.Start(t, prosodytest.Options{
		Config:   cfg,
		Services: []prosodytest.Service{{Name: "c2s", Port: c2s}, {Name: "component", Port: comp}},
	})
	const password = "alice-password-0123"
	p.Register(t, "alice", "localhost", password)

	// uploadd beside it, with the same secret and a component.
	clock := testclock.New()
	clock.Set(time.Now()) // Prosody's tokens carry wall-clock times
	a, err := newApp(config{
		BaseURL: base, DataDir: filepath.Join(dir, "uploadd"), TTL: time.Hour,
		Secrets: secrets{Prosody: []byte(shareSecret)}, AdminSecret: []byte(adminSecret),
		Component: componentConfig{Addr: fmt.Sprintf("127.0.0.1:%d", comp), JID: "files.localhost",
			Secret: []byte(compSecret), Domains: []string{"localhost"}},
		ExpireEvery: time.Hour, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	in := &interop{app: a, clock: clock, prosody: p, c2s: fmt.Sprintf("127.0.0.1:%d", c2s), pool: pool,
		base: base, erased: make(chan int, 4), password: password, data: p.Data}
	a.adminHTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		a.admin.ServeHTTP(rec, r)
		in.erased <- rec.code
	})
	pubL, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", pub))
	if err != nil {
		t.Fatal(err)
	}
	admL, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", adm))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.serve(ctx, pubL, admL, &tls.Config{Certificates: []tls.Certificate{cert}}) }()
	t.Cleanup(func() {
		cancel()
		<-served
		a.Close()
	})
	p.WaitLog(t, "External component successfully authenticated")
	return in
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// login connects alice with a mellium client over STARTTLS and SCRAM.
func (in *interop) login(t *testing.T) *xmpp.Session {
	t.Helper()
	conn, err := net.Dial("tcp", in.c2s)
	if err != nil {
		t.Fatal(err)
	}
	s, err := xmpp.NewClientSession(context.Background(), jid.MustParse("alice@localhost"), conn,
		xmpp.StartTLS(&tls.Config{ServerName: "localhost", RootCAs: in.pool}),
		xmpp.SASL("", in.password, sasl.ScramSha256, sasl.ScramSha1),
		xmpp.BindResource())
	if err != nil {
		conn.Close()
		t.Fatalf("login: %v", err)
	}
	go func() { _ = s.Serve(nil) }()
	t.Cleanup(func() { s.Close(); conn.Close() })
	return s
}

// slotIQ is the answer to a slot request.
type slotIQ struct {
	XMLName xml.Name
	Type    string `xml:"type,attr"`
	Slot    struct {
		Put struct {
			URL     string `xml:"url,attr"`
			Headers []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:",chardata"`
			} `xml:"header"`
		} `xml:"put"`
		Get struct {
			URL string `xml:"url,attr"`
		} `xml:"get"`
	} `xml:"urn:xmpp:http:upload:0 slot"`
}

// requestSlot asks to for a slot of name with size and type.
func requestSlot(t *testing.T, s *xmpp.Session, to, name string, size int, ct string) slotIQ {
	t.Helper()
	req := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:http:upload:0", Local: "request"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "filename"}, Value: name},
			{Name: xml.Name{Local: "size"}, Value: fmt.Sprint(size)},
			{Name: xml.Name{Local: "content-type"}, Value: ct}}})
	resp, err := s.SendIQElement(context.Background(), req, stanza.IQ{Type: stanza.GetIQ, To: jid.MustParse(to)})
	if err != nil {
		t.Fatalf("slot request: %v", err)
	}
	defer resp.Close()
	var iq slotIQ
	if err := xml.NewTokenDecoder(resp).Decode(&iq); err != nil {
		t.Fatalf("slot answer: %v", err)
	}
	if iq.Type != "result" || iq.Slot.Put.URL == "" {
		t.Fatalf("slot answer %+v", iq)
	}
	return iq
}

func (in *interop) client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: in.pool}}}
}

func (in *interop) put(t *testing.T, slot slotIQ, body, ct string) int {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPut, slot.Slot.Put.URL, strings.NewReader(body))
	for _, h := range slot.Slot.Put.Headers {
		r.Header.Set(h.Name, strings.TrimSpace(h.Value))
	}
	r.Header.Set("Content-Type", ct)
	resp, err := in.client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (in *interop) get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := in.client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// slotRecordsMention reports whether mod_http_file_share's store of slot
// records (internal storage under data_path) contains s.
func (in *interop) slotRecordsMention(t *testing.T, s string) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(filepath.Join(in.data, "upload%2elocalhost"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		found = found || strings.Contains(string(b), s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestProsodyInterop runs Debian's Prosody with mod_http_file_share in
// external mode: a mellium client gets a slot from Prosody, uploads to
// uploadd and downloads; the file expires at uploadd's TTL; the component
// serves slots through Prosody's component port; and when alice deletes
// her account in-band, mod_uploadd_erase makes uploadd erase her files.
func TestProsodyInterop(t *testing.T) {
	in := startInterop(t)
	s := in.login(t)

	// 1. A slot from Prosody, a PUT to uploadd, a GET back.
	slot := requestSlot(t, s, "upload.localhost", "hello world.txt", 5, "text/plain")
	if !strings.HasPrefix(slot.Slot.Put.URL, in.base+"/") {
		t.Fatalf("Prosody's PUT URL %q is not below %q", slot.Slot.Put.URL, in.base)
	}
	if code := in.put(t, slot, "hello", "text/plain"); code != http.StatusCreated {
		t.Fatalf("PUT = %d", code)
	}
	if code, body := in.get(t, slot.Slot.Get.URL); code != http.StatusOK || body != "hello" {
		t.Fatalf("GET = %d %q", code, body)
	}
	// A second PUT with Prosody's token is refused.
	if code := in.put(t, slot, "hello", "text/plain"); code != http.StatusConflict {
		t.Fatalf("second PUT = %d, want 409", code)
	}

	// 2. It expires at uploadd's TTL (1 h), before Prosody's 7 days.
	in.clock.Add(time.Hour)
	if code, _ := in.get(t, slot.Slot.Get.URL); code != http.StatusNotFound {
		t.Fatalf("GET after the TTL = %d, want 404", code)
	}
	in.clock.Add(time.Second)
	if n, err := in.app.svc.Expire(context.Background(), time.Time{}); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v", n, err)
	}
	in.clock.Set(time.Now()) // new tokens are signed on the wall clock

	// 3. The component: a slot from files.localhost through Prosody's
	// component port.
	cslot := requestSlot(t, s, "files.localhost", "c.txt", 3, "text/plain")
	if code := in.put(t, cslot, "abc", "text/plain"); code != http.StatusCreated {
		t.Fatalf("component PUT = %d", code)
	}
	if code, body := in.get(t, cslot.Slot.Get.URL); code != http.StatusOK || body != "abc" {
		t.Fatalf("component GET = %d %q", code, body)
	}

	// 4. Account deletion: alice removes her account in-band (XEP-0077);
	// Prosody fires user-deleted and mod_uploadd_erase calls uploadd.
	slot2 := requestSlot(t, s, "upload.localhost", "kept.txt", 4, "text/plain")
	if code := in.put(t, slot2, "kept", "text/plain"); code != http.StatusCreated {
		t.Fatalf("PUT = %d", code)
	}
	if !in.slotRecordsMention(t, "alice@localhost") {
		t.Fatal("no slot record of alice in Prosody's store before the deletion: the check below would prove nothing")
	}
	remove := xmlstream.Wrap(xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: "remove"}}),
		xml.StartElement{Name: xml.Name{Space: "jabber:iq:register", Local: "query"}})
	if err := s.UnmarshalIQElement(context.Background(), remove, stanza.IQ{Type: stanza.SetIQ}, nil); err != nil {
		t.Logf("account removal answer: %v (Prosody closes the stream)", err)
	}
	if code := <-in.erased; code != http.StatusNoContent {
		t.Fatalf("admin DELETE from mod_uploadd_erase = %d, want 204", code)
	}
	// mod_uploadd_erase deleted Prosody's own slot records of alice (in the
	// same event, before calling uploadd).
	if in.slotRecordsMention(t, "alice@localhost") {
		t.Fatal("Prosody's http_file_share store still names alice after her account was deleted")
	}
	for _, u := range []string{slot2.Slot.Get.URL, cslot.Slot.Get.URL} {
		if code, _ := in.get(t, u); code != http.StatusNotFound {
			t.Fatalf("GET %s after account deletion = %d, want 404", u, code)
		}
	}
}
