package main

import (
	"context"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// Namespaces the tool speaks.
const (
	nsRegister     = "jabber:iq:register"
	nsRegisterFeat = "http://jabber.org/features/iq-register"
	nsMAM          = "urn:xmpp:mam:2"
	nsRSM          = "http://jabber.org/protocol/rsm"
	nsMUC          = "http://jabber.org/protocol/muc"
	nsMUCUser      = "http://jabber.org/protocol/muc#user"
	nsMUCOwner     = "http://jabber.org/protocol/muc#owner"
	nsUpload       = "urn:xmpp:http:upload:0"
	nsDiscoInfo    = "http://jabber.org/protocol/disco#info"
	nsDiscoItems   = "http://jabber.org/protocol/disco#items"
	nsPing         = "urn:xmpp:ping"
	nsSM           = "urn:xmpp:sm:3"
)

// Errors the tool returns.
var (
	// ErrRefused is returned when the server answers a request with an
	// error (the condition is in the message).
	ErrRefused = errors.New("load: refused by the server")
	// ErrTimeout is returned when an answer or the expected messages do
	// not arrive within -timeout.
	ErrTimeout = errors.New("load: timed out")
	// ErrClosed is returned for a request on a session that has ended.
	ErrClosed = errors.New("load: session ended")
)

// target is where and how to connect.
type target struct {
	Addr      string      // host:port of the client listener
	Domain    string      // XMPP domain
	DirectTLS bool        // TLS from the first byte (XEP-0368) instead of STARTTLS
	TLS       *tls.Config // verifies the server (or not, with -insecure)
	Timeout   time.Duration
	SM        bool // enable XEP-0198 after binding
}

// account is one user of the run.
type account struct {
	User, Password string
}

// client is one logged-in session. Its stanzas are read by one goroutine
// (Serve); answers to its IQs are handed to the waiting request, messages to
// onMessage.
type client struct {
	acct    account
	s       *xmpp.Session
	jid     jid.JID
	timeout time.Duration

	onMessage atomic.Pointer[func(m *node, at time.Duration)]
	presence  atomic.Pointer[func(p *node)]

	mu      sync.Mutex
	pending map[string]chan *node
	ended   bool
	nextID  atomic.Uint64

	// XEP-0198 (-sm): smIn counts the stanzas handled since <enabled/>;
	// smAnswer receives the server's answer to <enable/>.
	smIn     atomic.Uint32
	smOn     atomic.Bool
	smAnswer chan *node

	done   chan struct{}
	served error
}

// dial opens the transport: TCP, and TLS when DirectTLS.
func (tg target) dial(ctx context.Context) (net.Conn, error) {
	d := &net.Dialer{Timeout: tg.Timeout}
	if tg.DirectTLS {
		cfg := tg.TLS.Clone()
		cfg.NextProtos = []string{"xmpp-client"}
		return (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", tg.Addr)
	}
	return d.DialContext(ctx, "tcp", tg.Addr)
}

// features prepends STARTTLS when the transport is not TLS yet.
func (tg target) features(f ...xmpp.StreamFeature) []xmpp.StreamFeature {
	if tg.DirectTLS {
		return f
	}
	return append([]xmpp.StreamFeature{xmpp.StartTLS(tg.TLS.Clone())}, f...)
}

// register creates the account with XEP-0077 in-band registration before
// authentication. An account that already exists (conflict) is not an
// error: a later login with the wrong password will say so.
func (tg target) register(ctx context.Context, a account) error {
	ctx, cancel := context.WithTimeout(ctx, tg.Timeout)
	defer cancel()
	conn, err := tg.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	origin, err := jid.New("", tg.Domain, "")
	if err != nil {
		return err
	}
	var regErr error
	offered := false
	s, err := xmpp.NewClientSession(ctx, origin, conn, tg.features(registerFeature(a, &offered, &regErr))...)
	if err != nil {
		return fmt.Errorf("register %s: %w", a.User, err)
	}
	_ = s.Close()
	if !offered {
		return fmt.Errorf("register %s: the server offers no in-band registration", a.User)
	}
	return regErr
}

// registerFeature is the client side of XEP-0077 before authentication.
func registerFeature(a account, offered *bool, result *error) xmpp.StreamFeature {
	return xmpp.StreamFeature{
		Name: xml.Name{Space: nsRegisterFeat, Local: "register"},
		Parse: func(_ context.Context, d *xml.Decoder, _ *xml.StartElement) (bool, any, error) {
			return false, nil, d.Skip()
		},
		Negotiate: func(_ context.Context, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
			*offered = true
			w := s.TokenWriter()
			defer w.Close()
			r := s.TokenReader()
			defer r.Close()
			q := fmt.Sprintf(`<iq xmlns="jabber:client" type="set" id="reg1"><query xmlns="%s"><username>%s</username><password>%s</password></query></iq>`,
				nsRegister, escape(a.User), escape(a.Password))
			if err := copyRaw(w, q); err != nil {
				return 0, nil, err
			}
			if err := w.Flush(); err != nil {
				return 0, nil, err
			}
			for {
				tok, err := r.Token()
				if err != nil {
					return 0, nil, err
				}
				start, ok := tok.(xml.StartElement)
				if !ok {
					continue
				}
				n, err := readNode(r, start)
				if err != nil {
					return 0, nil, err
				}
				switch {
				case n.Name.Local != "iq":
					*result = fmt.Errorf("register %s: %w (<%s> instead of an answer)", a.User, ErrRefused, n.Name.Local)
				case n.attr("type") == "error":
					if c := n.errorCondition(); c != "conflict" {
						*result = fmt.Errorf("register %s: %w (%s)", a.User, ErrRefused, c)
					}
				}
				return 0, nil, nil
			}
		},
	}
}

// login opens a session for a (SASL PLAIN over TLS, a server-chosen
// resource) and starts reading its stanzas.
func (tg target) login(ctx context.Context, a account) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, tg.Timeout)
	defer cancel()
	conn, err := tg.dial(ctx)
	if err != nil {
		return nil, err
	}
	origin, err := jid.New(a.User, tg.Domain, "")
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("login %s: %w", a.User, err)
	}
	s, err := xmpp.NewClientSession(ctx, origin, conn,
		tg.features(xmpp.SASL("", a.Password, sasl.Plain), xmpp.BindResource())...)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("login %s: %w", a.User, err)
	}
	if s.LocalAddr().Resourcepart() == "" {
		conn.Close()
		return nil, fmt.Errorf("login %s: resource binding refused", a.User)
	}
	c := &client{
		acct:     a,
		s:        s,
		jid:      s.LocalAddr(),
		timeout:  tg.Timeout,
		pending:  make(map[string]chan *node),
		done:     make(chan struct{}),
		smAnswer: make(chan *node, 1),
	}
	go c.serve()
	if tg.SM {
		if err := c.enableSM(); err != nil {
			c.close()
			return nil, fmt.Errorf("login %s: %w", a.User, err)
		}
	}
	return c, nil
}

// enableSM enables XEP-0198 (without resumption: the tool does not
// reconnect) and waits for the server's answer.
func (c *client) enableSM() error {
	start := xml.StartElement{Name: xml.Name{Space: nsSM, Local: "enable"}}
	if err := c.write(xmlstream.Wrap(nil, start)); err != nil {
		return err
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case n := <-c.smAnswer:
		if n.Name.Local != "enabled" {
			return fmt.Errorf("stream management: %w (<%s/>)", ErrRefused, n.Name.Local)
		}
		return nil
	case <-c.done:
		return ErrClosed
	case <-timer.C:
		return fmt.Errorf("stream management: %w", ErrTimeout)
	}
}

// serve reads stanzas until the session ends.
func (c *client) serve() {
	err := c.s.Serve(xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		at := since()
		n, err := readNode(t, *start)
		if err != nil {
			return err
		}
		if n.Name.Space == nsSM {
			return c.handleSM(t, n)
		}
		if c.smOn.Load() {
			c.smIn.Add(1) // handled below (XEP-0198 counts every stanza)
		}
		switch n.Name.Local {
		case "iq":
			switch typ := n.attr("type"); typ {
			case "result", "error":
				c.mu.Lock()
				ch := c.pending[n.attr("id")]
				delete(c.pending, n.attr("id"))
				c.mu.Unlock()
				if ch != nil {
					ch <- n
				}
			case "get":
				if n.child(nsPing, "ping") != nil { // XEP-0199: keep idle sessions open
					attrs := []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "result"}, {Name: xml.Name{Local: "id"}, Value: n.attr("id")}}
					if from := n.attr("from"); from != "" {
						attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "to"}, Value: from})
					}
					_, err := xmlstream.Copy(t, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: stanza.NSClient, Local: "iq"}, Attr: attrs}))
					return err
				}
			}
		case "message":
			if f := c.onMessage.Load(); f != nil {
				(*f)(n, at)
			}
		case "presence":
			if f := c.presence.Load(); f != nil {
				(*f)(n)
			}
		}
		return nil
	}))
	c.mu.Lock()
	c.ended = true
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	c.served = err
	close(c.done)
}

// handleSM handles a XEP-0198 element from the server: the answer to
// <enable/>, and <r/>, answered with the count of handled stanzas.
func (c *client) handleSM(t xmlstream.TokenReadEncoder, n *node) error {
	switch n.Name.Local {
	case "enabled", "failed":
		if n.Name.Local == "enabled" {
			c.smOn.Store(true) // the server counts what it sends from here
		}
		select {
		case c.smAnswer <- n:
		default:
		}
	case "r":
		h := strconv.FormatUint(uint64(c.smIn.Load()), 10)
		a := xml.StartElement{Name: xml.Name{Space: nsSM, Local: "a"}, Attr: []xml.Attr{{Name: xml.Name{Local: "h"}, Value: h}}}
		_, err := xmlstream.Copy(t, xmlstream.Wrap(nil, a))
		return err
	}
	return nil
}

// close ends the stream and the connection and waits for the reader.
func (c *client) close() {
	_ = c.s.Close()
	_ = c.s.Conn().Close()
	<-c.done
}

// write sends tokens under the session's output lock with a write
// deadline, never with a cancellable context (see the server's
// session.write for why).
func (c *client) write(r xml.TokenReader) error {
	w := c.s.TokenWriter()
	_ = c.s.Conn().SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := xmlstream.Copy(w, r)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeRaw sends raw XML in the jabber:client namespace.
func (c *client) writeRaw(raw string) error {
	return c.write(rawTokens(raw))
}

// iq sends raw, an <iq> whose id attribute is the placeholder {id}, and
// waits for its answer. An error answer is returned as the node and
// ErrRefused.
func (c *client) iq(raw string) (*node, error) {
	id := "l" + strconv.FormatUint(c.nextID.Add(1), 36)
	ch := make(chan *node, 1)
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.pending[id] = ch
	c.mu.Unlock()
	if err := c.writeRaw(strings.Replace(raw, "{id}", id, 1)); err != nil {
		return nil, err
	}
	timer := time.NewTimer(c.timeout)
	defer timer.Stop()
	select {
	case n, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		if n.attr("type") == "error" {
			return n, fmt.Errorf("%w (%s)", ErrRefused, n.errorCondition())
		}
		return n, nil
	case <-timer.C:
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ErrTimeout
	}
}

// archiveAlways sets the XEP-0441 archive default to always.
func (c *client) archiveAlways() error {
	_, err := c.iq(`<iq type="set" id="{id}"><prefs xmlns="` + nsMAM + `" default="always"/></iq>`)
	if err != nil {
		return fmt.Errorf("archive prefs of %s: %w", c.acct.User, err)
	}
	return nil
}

var (
	msgName  = xml.Name{Space: stanza.NSClient, Local: "message"}
	bodyName = xml.Name{Space: stanza.NSClient, Local: "body"}
)

// sendMessage writes one message of type typ to to with body.
func (c *client) sendMessage(to, typ, body string) error {
	start := xml.StartElement{Name: msgName, Attr: []xml.Attr{
		{Name: xml.Name{Local: "to"}, Value: to},
		{Name: xml.Name{Local: "type"}, Value: typ},
	}}
	return c.write(xmlstream.Wrap(
		xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: bodyName}),
		start))
}

func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func copyRaw(w xmlstream.TokenWriter, raw string) error {
	_, err := xmlstream.Copy(w, rawTokens(raw))
	return err
}

// rawTokens decodes raw XML in the jabber:client namespace. The xmlns
// attributes are dropped: the decoder already put them in each name's
// Space, and the encoder would write them twice (which Prosody rightly
// refuses as a duplicate attribute).
func rawTokens(raw string) xml.TokenReader {
	d := xml.NewDecoder(strings.NewReader(raw))
	d.DefaultSpace = stanza.NSClient
	return xmlstream.ReaderFunc(func() (xml.Token, error) {
		tok, err := d.Token()
		if start, ok := tok.(xml.StartElement); ok {
			attrs := start.Attr[:0]
			for _, a := range start.Attr {
				if a.Name.Space == "" && a.Name.Local == "xmlns" {
					continue
				}
				attrs = append(attrs, a)
			}
			start.Attr = attrs
			tok = start
		}
		return tok, err
	})
}

// epoch is the process's reference for the timestamps in message bodies;
// sender and recipient run in this process, so one monotonic clock times
// the hop.
var epoch = time.Now()

// since is the monotonic time since epoch.
func since() time.Duration { return time.Since(epoch) }
