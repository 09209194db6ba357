package account_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/internal/xmpptest"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// TestRemoveOverMelliumSession sends <remove/> through a real mellium
// session whose Kick sends a not-authorized stream error on that same
// session, as a server does: the client must get the IQ result first, then
// the stream error, and the handler must not deadlock.
func TestRemoveOverMelliumSession(t *testing.T) {
	mam := newHolder("mam")
	e := newEnv(t, account.Config{Holders: []account.Holder{mam}})
	e.seed(t, "alice")
	mam.put("alice@example.org", "messages")

	toServer, fromClient := net.Pipe()      // client writes fromClient → server reads toServer
	fromServer, toClient := net.Pipe()      // server writes fromServer → client reads toClient
	deadline := time.Now().Add(time.Minute) // a guard against hanging, not timing
	for _, c := range []net.Conn{toServer, fromClient, fromServer, toClient} {
		c.SetDeadline(deadline)
		defer c.Close()
	}
	var out bytes.Buffer
	read := make(chan struct{})
	go func() {
		io.Copy(&out, toClient)
		close(read)
	}()
	go func() {
		io.WriteString(fromClient, xmpptest.StreamHeader)
		io.WriteString(fromClient, `<iq type='set' id='rm1'><query xmlns='jabber:iq:register'><remove/></query></iq>`)
		// The client keeps its stream open: the server must end it.
	}()

	var sess *xmpp.Session
	kicked := make(chan jid.JID, 1)
	h := account.NewHandler(e.m, account.HandlerConfig{
		Secure: true,
		User:   jid.MustParse("alice@example.org/phone"),
		Kick: func(u jid.JID) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := sess.Send(ctx, stream.NotAuthorized.TokenReader()); err != nil {
				t.Errorf("sending the stream error: %v", err)
			}
			sess.Close()
			fromServer.Close()
			toServer.Close()
			kicked <- u
		},
	})
	rw := struct {
		io.Reader
		io.Writer
	}{toServer, fromServer}
	var err error
	sess, err = xmpp.NewSession(context.Background(), jid.MustParse("example.org"), jid.MustParse("alice@example.org/phone"), rw, xmpp.Received, xmpptest.Negotiator)
	if err != nil {
		t.Fatal(err)
	}
	serveErr := sess.Serve(mux.New(stanza.NSClient, account.Handle(h)))
	if u := <-kicked; u.String() != "alice@example.org" {
		t.Fatalf("kicked %v", u)
	}
	<-read
	got := out.String()
	res := strings.Index(got, `type="result"`)
	se := strings.Index(got, "not-authorized")
	if res < 0 || se < 0 || se < res || !strings.Contains(got, `id="rm1"`) {
		t.Fatalf("client got %q (Serve: %v); want the IQ result, then a not-authorized stream error", got, serveErr)
	}
	if _, err := e.m.Get(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatal("account not deleted")
	}
	if mam.has("alice@example.org") {
		t.Fatal("holder not erased")
	}
}
