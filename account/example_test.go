package account_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/account/accounttest"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// notes is a tiny Holder: one note per user.
type notes struct {
	mu sync.Mutex
	m  map[string]string
}

func (n *notes) Name() string { return "notes" }

func (n *notes) Export(_ context.Context, user jid.JID, w io.Writer) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := fmt.Fprintf(w, "<note>%s</note>", n.m[user.String()])
	return err
}

func (n *notes) Erase(_ context.Context, user jid.JID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, user.String())
	return nil
}

func Example() {
	ctx := context.Background()
	holder := &notes{m: map[string]string{"alice@example.org": "buy milk"}}

	// In production: account.NewBoltStore(db), and the default Params.
	m, err := account.NewManager(accounttest.NewMemStore(), account.Config{
		Domain:  "example.org",
		Params:  account.MinParams(), // fast for the example
		Holders: []account.Holder{holder},
	})
	if err != nil {
		panic(err)
	}
	// At start-up, finish deletions a crash interrupted.
	if err := m.Resume(ctx); err != nil {
		fmt.Println("resume:", err)
	}

	// The client key is what rate limits apply to, e.g. the client's IP.
	fmt.Println("register:", m.Register(ctx, "192.0.2.10", "Alice", "correct horse"))
	fmt.Println("again:", m.Register(ctx, "192.0.2.10", "alice", "another one"))
	fmt.Println("login:", m.Authenticate(ctx, "192.0.2.10", "alice", "correct horse"))
	fmt.Println("wrong:", m.Authenticate(ctx, "192.0.2.10", "alice", "wrong horse"))

	fmt.Println("delete:", m.Delete(ctx, "alice"))
	fmt.Println("note left:", holder.m["alice@example.org"] != "")
	fmt.Println("login:", m.Authenticate(ctx, "192.0.2.10", "alice", "correct horse"))
	err = m.Register(ctx, "192.0.2.10", "alice", "correct horse")
	fmt.Println("name reserved:", errors.Is(err, account.ErrExists))
	// Output:
	// register: <nil>
	// again: account: username not available
	// login: <nil>
	// wrong: account: authentication failed
	// delete: <nil>
	// note left: false
	// login: account: authentication failed
	// name reserved: true
}

// ExampleHandler_Respond answers one raw registration IQ, as a server that
// routes IQs itself would; with a mellium mux, use Handle instead:
// mux.New(stanza.NSClient, account.Handle(h), …), one Handler per session.
func ExampleHandler_Respond() {
	m, err := account.NewManager(accounttest.NewMemStore(), account.Config{Params: account.MinParams()})
	if err != nil {
		panic(err)
	}
	// Before authentication, on a TLS stream, with registration open.
	h := account.NewHandler(m, account.HandlerConfig{
		Secure: true, Open: true, ClientKey: "192.0.2.10",
		Instructions: "Pick a name.",
	})
	iq := stanza.IQ{ID: "reg1", Type: stanza.GetIQ}
	payload := xml.NewDecoder(strings.NewReader(`<query xmlns='jabber:iq:register'/>`))
	reply, afterSend := h.Respond(context.Background(), iq, payload)

	var out strings.Builder
	enc := xml.NewEncoder(&out)
	if _, err := xmlstream.Copy(enc, reply); err != nil {
		panic(err)
	}
	enc.Flush()
	afterSend() // after a <remove/>, this ends the user's sessions (HandlerConfig.Kick)
	fmt.Println(out.String())
	// Output:
	// <iq type="result" id="reg1"><query xmlns="jabber:iq:register"><instructions>Pick a name.</instructions><username></username><password></password><x xmlns="jabber:x:data" type="form"><title>Registration</title><instructions>Pick a name.</instructions><field var="FORM_TYPE" type="hidden"><value>jabber:iq:register</value></field><field var="username" type="text-single" label="Username"><required></required></field><field var="password" type="text-private" label="Password"><required></required></field></x></query></iq>
}

// Names that look alike share a skeleton; Register refuses a name whose
// skeleton is taken.
func ExampleSkeleton() {
	fmt.Println(account.Skeleton("cope") == account.Skeleton("соре")) // Cyrillic
	fmt.Println(account.Skeleton("alice") == account.Skeleton("a1ice"))
	fmt.Println(account.Skeleton("alice") == account.Skeleton("alicia"))
	// Output:
	// true
	// true
	// false
}

// Refusals say why, without repeating the password; none costs a hash.
func ExampleManager_Register_refusals() {
	ctx := context.Background()
	m, err := account.NewManager(accounttest.NewMemStore(), account.Config{})
	if err != nil {
		panic(err)
	}
	err = m.Register(ctx, "192.0.2.1", "bob", "Password1")
	fmt.Println(errors.Is(err, account.ErrWeakPassword), err)
	err = m.Register(ctx, "192.0.2.1", "bob", "        ")
	fmt.Println(errors.Is(err, account.ErrWeakPassword), err)
	err = m.Register(ctx, "192.0.2.1", "\u0430lice", "correct horse battery") // Cyrillic а
	fmt.Println(errors.Is(err, account.ErrMixedScripts), err)
	// Output:
	// true account: refused by policy: password is one of the most common passwords
	// true account: refused by policy: password is only white space
	// true account: refused by policy: username mixes scripts (Cyrillic, Latin); use letters of one script
}
