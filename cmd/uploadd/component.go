package main

import (
	"context"
	"errors"
	"net"
	"time"

	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"

	"chatbx.eu/privacy/upload"
)

// componentConfig configures the XEP-0114 component.
type componentConfig struct {
	Addr    string   // the server's component port, host:port
	JID     string   // the component's domain
	Secret  []byte   // the shared secret
	Domains []string // users of these domains may request slots
}

// allowDomains is the Service's Allow: only users of the configured
// domains, so that a component reachable from other servers does not
// store their users' files.
func allowDomains(domains map[string]bool) func(jid.JID) bool {
	return func(j jid.JID) bool { return domains[j.Domainpart()] }
}

// runComponent keeps the component connected: it dials the server,
// authenticates with the shared secret (XEP-0114 handshake) and answers
// slot requests and disco#info until the stream ends, then dials again
// after a pause that doubles up to a minute. It returns only when ctx ends.
func (a *app) runComponent(ctx context.Context) error {
	addr, err := jid.Parse(a.cfg.Component.JID)
	if err != nil {
		return err
	}
	h := mux.New(component.NSAccept, upload.Handle(a.svc))
	wait := time.Second
	for {
		err := a.componentOnce(ctx, addr, h)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.cfg.Log.Warn("component stream ended", "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Minute)
	}
}

func (a *app) componentOnce(ctx context.Context, addr jid.JID, h *mux.ServeMux) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", a.cfg.Component.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	s, err := component.NewSession(hctx, addr, a.cfg.Component.Secret, conn)
	cancel()
	if err != nil {
		return err
	}
	a.cfg.Log.Info("component connected")
	err = s.Serve(h)
	return errors.Join(err, s.Close())
}
