package main

// The end-to-end test harness. Every test here, and the browser tests of
// internal/web's helper (browser_test.go), starts a real server in-process on
// free loopback ports with startTestServer and talks to it over TLS the way a
// client does, trusting only the server's self-signed certificate.
//
//	ts := startTestServer(t)                  // stopped by t.Cleanup
//	ts.Register(t, "alice", "secret pass")    // XEP-0077 in-band, over TLS
//	a := ts.Login(t, "alice", "secret pass")  // *testClient, bound session
//	a.Send(t, `<message to="bob@localhost" type="chat"><body>hi</body></message>`)
//	m := b.Next(t, isMessage)                 // next matching stanza
//	resp, err := ts.HTTPClient.Get(ts.HTTPSURL + "/privacy")
//
// Fields: Domain, C2S (STARTTLS addr), C2STLS (direct TLS addr), HTTPSURL
// (https://localhost:port, no trailing slash), DataDir, LogDir, CertPool and
// TLSConfig (trust the server's certificate only), HTTPClient (uses them).
// Options: withConfig(func(*Config)) changes the Config before start.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// testTimeout bounds every wait of the harness: a server that does not
// answer fails the test instead of hanging it.
const testTimeout = 20 * time.Second

// testServer is a running server for a test.
type testServer struct {
	*Server

	Domain   string
	C2S      string // STARTTLS client address
	C2STLS   string // direct TLS client address
	HTTPSURL string // https://localhost:port
	DataDir  string
	LogDir   string

	CertPool   *x509.CertPool // holds only the server's certificate
	TLSConfig  *tls.Config    // verifies the server's certificate for Domain
	HTTPClient *http.Client   // HTTPS client trusting CertPool

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopErr  error
}

// testOption changes the Config of a test server.
type testOption func(*Config)

// withConfig applies f to the Config before the server starts.
func withConfig(f func(*Config)) testOption { return testOption(f) }

// startTestServer starts a server on free loopback ports with a fresh data
// directory, open registration and fast (OWASP floor) password hashing.
// t.Cleanup stops it and fails the test if the shutdown fails.
func startTestServer(t testing.TB, opts ...testOption) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		Domain:           "localhost",
		C2S:              "127.0.0.1:0",
		C2STLS:           "127.0.0.1:0",
		HTTP:             "127.0.0.1:0",
		DataDir:          dir,
		OpenRegistration: true,
		FastHashing:      true,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Stderr == nil {
		log := &syncBuffer{}
		cfg.Stderr = log
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server log:\n%s", log.String())
			}
		})
	}
	return startWithConfig(t, cfg)
}

// startWithConfig starts a server with exactly cfg (a restart over the same
// DataDir uses it).
func startWithConfig(t testing.TB, cfg Config) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Server, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, func(s *Server) { ready <- s }) }()
	var srv *Server
	select {
	case srv = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(testTimeout):
		cancel()
		t.Fatal("server did not start in time")
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tlsCfg := &tls.Config{ServerName: srv.cfg.Domain, RootCAs: pool, MinVersion: tls.VersionTLS12}
	ts := &testServer{
		Server:    srv,
		Domain:    srv.cfg.Domain,
		C2S:       srv.C2SAddr(),
		C2STLS:    srv.C2STLSAddr(),
		HTTPSURL:  srv.BaseURL(),
		DataDir:   srv.cfg.DataDir,
		LogDir:    srv.cfg.LogDir,
		CertPool:  pool,
		TLSConfig: tlsCfg,
		HTTPClient: &http.Client{
			Transport: &http.Transport{TLSClientConfig: tlsCfg.Clone()},
			Timeout:   testTimeout,
		},
		cancel: cancel,
		done:   done,
	}
	t.Cleanup(func() {
		if err := ts.Stop(); err != nil {
			t.Errorf("server shutdown: %v", err)
		}
	})
	return ts
}

// Stop shuts the server down gracefully and returns run's error. It is
// idempotent.
func (ts *testServer) Stop() error {
	ts.stopOnce.Do(func() {
		ts.cancel()
		select {
		case ts.stopErr = <-ts.done:
		case <-time.After(testTimeout):
			ts.stopErr = errors.New("shutdown timed out")
		}
		ts.HTTPClient.CloseIdleConnections()
	})
	return ts.stopErr
}

// Register creates an account with XEP-0077 in-band registration over a
// STARTTLS connection and fails the test on error.
func (ts *testServer) Register(t testing.TB, user, password string) {
	t.Helper()
	if err := ts.register(user, password); err != nil {
		t.Fatalf("register %s: %v", user, err)
	}
}

// register is Register returning the error (a stanza.Error when refused).
func (ts *testServer) register(user, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := net.DialTimeout("tcp", ts.C2S, testTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	origin, err := jid.New("", ts.Domain, "")
	if err != nil {
		return err
	}
	var regErr error
	s, err := xmpp.NewClientSession(ctx, origin, conn,
		xmpp.StartTLS(ts.TLSConfig.Clone()),
		registerClientFeature(user, password, false, &regErr),
	)
	if err != nil {
		return err
	}
	defer s.Close()
	return regErr
}

// registerClientFeature is the client side of XEP-0077 before auth: it
// sends the registration and records a refusal in *result.
// With getFirst it asks for the registration form first, as Conversations
// and Gajim do.
func registerClientFeature(user, password string, getFirst bool, result *error) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name: xml.Name{Space: account.NSFeature, Local: "register"},
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return false, nil, d.Skip()
		},
		Negotiate: func(ctx context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			w := s.TokenWriter()
			defer w.Close()
			r := s.TokenReader()
			defer r.Close()
			if getFirst {
				get := `<iq xmlns="jabber:client" type="get" id="reg0"><query xmlns="jabber:iq:register"/></iq>`
				if _, err := xmlstream.Copy(w, clientXML(get)); err != nil {
					return 0, nil, err
				}
				if err := w.Flush(); err != nil {
					return 0, nil, err
				}
				form, err := nextElement(r)
				if err != nil {
					return 0, nil, err
				}
				q, _ := form.child(xml.Name{Space: account.NS, Local: "query"})
				_, u := q.child(xml.Name{Space: account.NS, Local: "username"})
				_, p := q.child(xml.Name{Space: account.NS, Local: "password"})
				if form.attr("type") != "result" || !u || !p {
					return 0, nil, errors.New("registration form without username and password")
				}
			}
			q := fmt.Sprintf(`<iq xmlns="jabber:client" type="set" id="reg1"><query xmlns="jabber:iq:register"><username>%s</username><password>%s</password></query></iq>`,
				xmlEscape(user), xmlEscape(password))
			if _, err := xmlstream.Copy(w, clientXML(q)); err != nil {
				return 0, nil, err
			}
			if err := w.Flush(); err != nil {
				return 0, nil, err
			}
			e, err := nextElement(r)
			if err != nil {
				return 0, nil, err
			}
			if e.attr("type") == "error" {
				errEl, _ := e.child(xml.Name{Space: stanza.NSClient, Local: "error"})
				se, err := stanza.UnmarshalError(errEl.TokenReader())
				if err != nil {
					*result = errors.New("registration refused")
				} else {
					*result = se
				}
			}
			return 0, nil, nil
		},
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// testClient is a logged-in mellium client session whose incoming stanzas
// are buffered for the test.
type testClient struct {
	*xmpp.Session
	JID jid.JID // bound full JID

	in      chan element
	served  chan error // Serve's result
	mu      sync.Mutex
	pending []element // read but not yet matched by Next
}

// Login opens a STARTTLS session for user (SASL PLAIN, resource binding)
// and fails the test on error. t.Cleanup closes it.
func (ts *testServer) Login(t testing.TB, user, password string) *testClient {
	t.Helper()
	c, err := ts.login(user, password, false)
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// login is Login returning the error; direct selects the direct TLS port.
func (ts *testServer) login(user, password string, direct bool) (*testClient, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	origin, err := jid.New(user, ts.Domain, "")
	if err != nil {
		return nil, err
	}
	var conn net.Conn
	features := []xmpp.StreamFeature{
		xmpp.SASL("", password, sasl.Plain),
		xmpp.BindResource(),
	}
	if direct {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", ts.C2STLS, ts.TLSConfig.Clone())
	} else {
		conn, err = net.DialTimeout("tcp", ts.C2S, testTimeout)
		features = append([]xmpp.StreamFeature{xmpp.StartTLS(ts.TLSConfig.Clone())}, features...)
	}
	if err != nil {
		return nil, err
	}
	s, err := xmpp.NewClientSession(ctx, origin, conn, features...)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if s.LocalAddr().Resourcepart() == "" {
		// mellium's client takes a bind answered with an error for a
		// success with an empty JID.
		conn.Close()
		return nil, errors.New("resource binding refused")
	}
	c := &testClient{
		Session: s,
		JID:     s.LocalAddr(),
		in:      make(chan element, 1024),
		served:  make(chan error, 1),
	}
	go func() {
		err := s.Serve(xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			e, err := readElement(t, *start)
			if err != nil {
				return err
			}
			select {
			case c.in <- e:
			default: // a test that does not read: drop
			}
			return nil
		}))
		c.served <- err
		close(c.in)
		conn.Close()
	}()
	return c, nil
}

// negotiate dials the STARTTLS port and negotiates a client session for
// origin with StartTLS followed by features (registration, SASL, bind as
// the test needs); the error is negotiation's. t.Cleanup closes the
// connection.
func (ts *testServer) negotiate(t testing.TB, origin string, features ...xmpp.StreamFeature) (*xmpp.Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := net.DialTimeout("tcp", ts.C2S, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	features = append([]xmpp.StreamFeature{xmpp.StartTLS(ts.TLSConfig.Clone())}, features...)
	return xmpp.NewClientSession(ctx, jid.MustParse(origin), conn, features...)
}

// Close ends the client's stream and connection.
func (c *testClient) Close() {
	_ = c.Session.Close()
	_ = c.Session.Conn().Close()
}

// clientXML decodes raw test XML (default namespace jabber:client) for a
// mellium token writer. encoding/xml's decoder keeps each xmlns attribute
// beside the namespace it resolved into the name, and its encoder writes
// both: <query xmlns="…" xmlns="…">, a duplicate attribute that the server
// refuses as not-well-formed (as Prosody does). The reader drops the xmlns
// attributes the encoder writes again (stripXMLNS).
func clientXML(raw string) xml.TokenReader {
	d := xml.NewDecoder(strings.NewReader(raw))
	d.DefaultSpace = stanza.NSClient
	return noDupXMLNS{d}
}

// noDupXMLNS drops from each start element the xmlns attribute that
// duplicates its namespace.
type noDupXMLNS struct{ r xml.TokenReader }

func (n noDupXMLNS) Token() (xml.Token, error) {
	tok, err := n.r.Token()
	if s, ok := tok.(xml.StartElement); ok {
		tok = stripXMLNS(s)
	}
	return tok, err
}

// Send writes raw XML (one or more stanzas, default namespace jabber:client).
func (c *testClient) Send(t testing.TB, raw string) {
	t.Helper()
	if err := writeElements(c.Session, clientXML(raw)); err != nil {
		logStacks(t)
		t.Fatalf("send: %v (stream: %v)", err, c.endedErr())
	}
}

// IQ sends an IQ (raw XML with an id) and returns the response element
// (the next iq of type result or error with that id; what arrives before
// it stays queued for Next).
func (c *testClient) IQ(t testing.TB, raw string) element {
	t.Helper()
	d := clientXML(raw)
	tok, err := d.Token()
	start, ok := tok.(xml.StartElement)
	if err != nil || !ok || start.Name.Local != "iq" {
		t.Fatalf("IQ(%q): not an iq (%v)", raw, err)
	}
	id := (element{start: start}).attr("id")
	if err := writeElements(c.Session, xmlstream.MultiReader(xmlstream.Token(start), d)); err != nil {
		logStacks(t)
		t.Fatalf("iq: %v (stream: %v)", err, c.endedErr())
	}
	return c.Next(t, func(e element) bool {
		typ := e.attr("type")
		return e.start.Name.Local == "iq" && e.attr("id") == id && (typ == "result" || typ == "error")
	})
}

// writeElements writes what r holds on s under its output lock, with a
// write deadline of testTimeout. It never hands mellium a context that can
// end: mellium v0.22's Send and SendIQ arm a goroutine per call that, run
// late on a busy machine, can set a past deadline on the connection under
// a later write (see session.write in the server).
func writeElements(s *xmpp.Session, r xml.TokenReader) error {
	w := s.TokenWriter()
	_ = s.Conn().SetWriteDeadline(time.Now().Add(testTimeout))
	_, err := xmlstream.Copy(w, r)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// logStacks logs every goroutine's stack, client's and server's (both run
// in the test binary): a harness wait that timed out shows where it hung.
func logStacks(t testing.TB) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			t.Logf("goroutines:\n%s", buf[:n])
			return
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Next returns the next incoming stanza for which match is true (all when
// match is nil); stanzas that do not match stay queued for later calls.
func (c *testClient) Next(t testing.TB, match func(element) bool) element {
	t.Helper()
	e, err := c.next(match, testTimeout)
	if err != nil {
		logStacks(t)
		t.Fatalf("%s: waiting for a stanza: %v", c.JID, err)
	}
	return e
}

func (c *testClient) next(match func(element) bool, timeout time.Duration) (element, error) {
	c.mu.Lock()
	for i, e := range c.pending {
		if match == nil || match(e) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			c.mu.Unlock()
			return e, nil
		}
	}
	c.mu.Unlock()
	if timeout == 0 { // only what already arrived
		for {
			select {
			case e, ok := <-c.in:
				if !ok {
					return element{}, errors.New("stream ended")
				}
				if match == nil || match(e) {
					return e, nil
				}
				c.mu.Lock()
				c.pending = append(c.pending, e)
				c.mu.Unlock()
			default:
				return element{}, errors.New("nothing queued")
			}
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-c.in:
			if !ok {
				return element{}, fmt.Errorf("stream ended: %v", c.servedErr())
			}
			if match == nil || match(e) {
				return e, nil
			}
			c.mu.Lock()
			c.pending = append(c.pending, e)
			c.mu.Unlock()
		case <-timer.C:
			return element{}, errors.New("timeout")
		}
	}
}

// endedErr returns Serve's result if the stream already ended.
func (c *testClient) endedErr() error {
	select {
	case err := <-c.served:
		c.served <- err
		return fmt.Errorf("ended: %w", err)
	default:
		return errors.New("still open")
	}
}

// servedErr returns Serve's result once the stream ended.
func (c *testClient) servedErr() error {
	select {
	case err := <-c.served:
		c.served <- err
		return err
	case <-time.After(testTimeout):
		return errors.New("stream still open")
	}
}

// WaitEnd waits until the server ended the stream and returns Serve's
// error (a stream.Error when the server sent one).
func (c *testClient) WaitEnd(t testing.TB) error {
	t.Helper()
	select {
	case err := <-c.served:
		c.served <- err
		return err
	case <-time.After(testTimeout):
		t.Fatalf("%s: stream not ended", c.JID)
		return nil
	}
}

// isMessage matches <message/> stanzas with a body.
func isMessage(e element) bool {
	_, ok := e.child(xml.Name{Space: stanza.NSClient, Local: "body"})
	return e.start.Name.Local == "message" && ok
}

// body returns a message's body text.
func body(e element) string {
	b, _ := e.child(xml.Name{Space: stanza.NSClient, Local: "body"})
	return b.text()
}

// stanzaErrorCondition returns the condition of a stanza error, or "".
func stanzaErrorCondition(e element) string {
	errEl, ok := e.child(xml.Name{Space: stanza.NSClient, Local: "error"})
	if !ok {
		return ""
	}
	for _, c := range errEl.children() {
		if c.start.Name.Space == stanza.NSError && c.start.Name.Local != "text" {
			return c.start.Name.Local
		}
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
