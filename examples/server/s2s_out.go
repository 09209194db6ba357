package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"
)

// s2sOut is the outbound queue of one remote domain and the goroutine
// (run) that owns its stream. Stanzas wait in the queue until written to
// an authenticated stream; when the domain cannot be reached after the
// retries, every queued stanza is bounced to its sender. Nothing is
// dropped silently.
type s2sOut struct {
	f      *s2sService
	from   string // our domain (or service subdomain) the stream is for
	domain string

	mu    sync.Mutex
	queue []element

	wake     chan struct{} // something was queued
	quit     chan struct{} // shutdown
	quitOnce sync.Once
}

func newS2SOut(f *s2sService, from, domain string) *s2sOut {
	return &s2sOut{f: f, from: from, domain: domain, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

// push queues e; false when the queue is full.
func (q *s2sOut) push(e element) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) >= maxS2SQueue {
		return false
	}
	q.queue = append(q.queue, e)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

func (q *s2sOut) stop() { q.quitOnce.Do(func() { close(q.quit) }) }

// peek returns the head of the queue.
func (q *s2sOut) peek() (element, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return element{}, false
	}
	return q.queue[0], true
}

// pop removes the head of the queue (written).
func (q *s2sOut) pop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queue[0] = element{}
	q.queue = q.queue[1:]
}

// takeAll empties the queue.
func (q *s2sOut) takeAll() []element {
	q.mu.Lock()
	defer q.mu.Unlock()
	v := q.queue
	q.queue = nil
	return v
}

// bounceAll bounces every queued stanza with cond.
func (q *s2sOut) bounceAll(cond stanza.Condition) {
	for _, e := range q.takeAll() {
		q.f.srv.bounce(e, cond)
	}
}

// run connects when something is queued, writes the queue, and keeps the
// stream until it has been idle for s2sIdleClose; an idle queue without a
// stream ends the goroutine.
func (q *s2sOut) run() {
	f := q.f
	defer f.wg.Done()
	idle := time.NewTimer(s2sIdleClose)
	defer idle.Stop()
	for {
		if _, ok := q.peek(); !ok {
			idle.Reset(s2sIdleClose)
			select {
			case <-q.wake:
				continue
			case <-q.quit:
				q.bounceAll(stanza.RemoteServerTimeout)
				return
			case <-idle.C:
				f.mu.Lock()
				_, busy := q.peek()
				if !busy {
					delete(f.out, q.from+" "+q.domain)
				}
				f.mu.Unlock()
				if !busy {
					return
				}
				continue
			}
		}
		st, err := q.connect()
		if err != nil {
			cond := stanza.RemoteServerNotFound
			if errIsTimeout(err) {
				cond = stanza.RemoteServerTimeout
			}
			f.srv.log.Info("s2s: remote domain unreachable; queue bounced", "err", err)
			q.bounceAll(cond)
			select {
			case <-q.quit:
				return
			default:
			}
			continue
		}
		q.deliver(st)
		select {
		case <-q.quit:
			q.bounceAll(stanza.RemoteServerTimeout)
			return
		default:
		}
	}
}

// connect tries the remote domain, waiting the retry delays between
// attempts. The error is the last attempt's, a timeout if any attempt
// timed out.
func (q *s2sOut) connect() (*s2sStream, error) {
	var timedOut error
	for i := 0; ; i++ {
		st, err := q.f.dialAuthenticated(q.f.ctx(), q.from, q.domain)
		if err == nil {
			return st, nil
		}
		if errIsTimeout(err) {
			timedOut = err
		}
		if i >= len(q.f.retry) {
			if timedOut != nil {
				return nil, timedOut
			}
			return nil, err
		}
		t := time.NewTimer(q.f.retry[i])
		select {
		case <-t.C:
		case <-q.quit:
			t.Stop()
			return nil, errors.New("s2s: shutting down")
		}
	}
}

// deliver writes the queue to st until the stream fails, stays idle for
// s2sIdleClose or the server shuts down. A stanza whose write failed stays
// queued for the next stream.
func (q *s2sOut) deliver(st *s2sStream) {
	closed := make(chan struct{})
	go func() { // the peer sends nothing we need on our outbound stream
		defer close(closed)
		for {
			if _, err := st.next(maxStanzaWireBytes); err != nil {
				return
			}
		}
	}()
	defer func() {
		st.close()
		<-closed
		q.f.srv.connLog.Info("s2s disconnected", "dir", "out", "domain", q.domain)
	}()
	idle := time.NewTimer(s2sIdleClose)
	defer idle.Stop()
	for {
		for {
			e, ok := q.peek()
			if !ok {
				break
			}
			if err := st.writeElement(e); err != nil {
				return
			}
			q.pop()
		}
		idle.Reset(s2sIdleClose)
		select {
		case <-q.wake:
		case <-closed:
			return
		case <-q.quit:
			return
		case <-idle.C:
			return
		}
	}
}

// dialAuthenticated opens an outbound stream from our domain (or service
// subdomain) our to domain, authenticated.
func (f *s2sService) dialAuthenticated(ctx context.Context, our, domain string) (*s2sStream, error) {
	targets, err := f.resolve(ctx, domain)
	if err != nil {
		return nil, err
	}
	var last error
	for _, target := range targets {
		st, kind, err := f.dialOutFrom(ctx, target, our, domain, "")
		if err == nil {
			f.srv.connLog.Info("s2s connected", "dir", "out", "domain", domain, "ip", clientIP(st.raw).String(), "auth", kind, "tls", tlsKind(target.directTLS))
			return st, nil
		}
		last = err
	}
	return nil, last
}

// verifyDialback asks the authoritative server of originating whether key
// is the one it sent to receiving (our domain or a service subdomain) for
// our stream streamID (XEP-0220 § 2.3), on a stream of its own, closed
// after the answer.
func (f *s2sService) verifyDialback(ctx context.Context, receiving, originating, streamID, key string) (bool, error) {
	targets, err := f.resolve(ctx, originating)
	if err != nil {
		return false, err
	}
	var last error
	for _, target := range targets {
		st, _, err := f.dialOutFrom(ctx, target, receiving, originating, "verify")
		if err != nil {
			last = err
			continue
		}
		defer st.close()
		if err := st.writeElement(simpleElement(nsDialback, "verify", key, "from", receiving, "to", originating, "id", streamID)); err != nil {
			return false, err
		}
		e, err := st.next(maxNegotiationBytes)
		if err != nil {
			return false, err
		}
		ok := e.start.Name == dbVerify && e.attr("id") == streamID && e.attr("from") == originating && e.attr("type") == "valid"
		return ok, nil
	}
	return false, last
}

// dialOutFrom connects to target for domain, secures the connection with
// STARTTLS (required) or, for a direct TLS target (XEP-0368), with a TLS
// handshake first (ALPN xmpp-server, SNI domain) and, unless mode is
// "verify", authenticates: SASL EXTERNAL when the peer's certificate is
// valid for domain and EXTERNAL is offered, Server Dialback otherwise. The
// whole negotiation, TLS handshake included, has Config.NegotiationTimeout.
// Our side is named our: our domain or a service subdomain.
func (f *s2sService) dialOutFrom(ctx context.Context, target s2sTarget, our, domain, mode string) (st *s2sStream, kind string, err error) {
	timeout := f.srv.cfg.NegotiationTimeout
	if f.srv.cfg.s2sTimeout > 0 {
		timeout = f.srv.cfg.s2sTimeout
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", target.addr)
	if err != nil {
		return nil, "", err
	}
	defer func() {
		if err != nil {
			_ = raw.Close()
		}
	}()
	_ = raw.SetDeadline(time.Now().Add(timeout))
	stopAfter := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stopAfter()
	st = newS2SStream(raw, maxNegotiationBytes)
	if !target.directTLS {
		if err := st.startTLSOut(our, domain); err != nil {
			return nil, "", err
		}
	}
	tc := tls.Client(st.lc, f.clientTLS(domain, target.directTLS))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, "", err
	}
	st.conn = tc
	st.restart()
	valid := f.certValidFor(tc.ConnectionState().PeerCertificates, domain)
	if err := st.writeHeader(our, domain, ""); err != nil {
		return nil, "", err
	}
	_, _, id, err := st.readHeader()
	if err != nil {
		return nil, "", err
	}
	st.id = id
	feats, err := st.features()
	if err != nil {
		return nil, "", err
	}
	if mode == "verify" {
		_ = raw.SetDeadline(time.Now().Add(timeout)) // for the one answer
		return st, "", nil
	}
	if valid && offersExternal(feats) {
		ok, err := f.externalOut(st, our, domain)
		if err != nil {
			return nil, "", err
		}
		if ok {
			_ = raw.SetDeadline(time.Time{})
			return st, "external", nil
		}
	}
	if id == "" {
		return nil, "", fmt.Errorf("%w: stream without id", errS2SProtocol)
	}
	dbid := dialbackID{receiving: domain, originating: our, streamID: id}
	key := f.keys.sent(dbid)
	if err := st.writeElement(simpleElement(nsDialback, "result", key, "from", our, "to", domain)); err != nil {
		f.keys.forget(dbid)
		return nil, "", err
	}
	e, err := st.next(maxNegotiationBytes)
	f.keys.forget(dbid)
	if err != nil {
		return nil, "", err
	}
	if e.start.Name != dbResult || e.attr("type") != "valid" || e.attr("from") != domain {
		return nil, "", fmt.Errorf("%w: dialback %s", errS2SRefused, e.attr("type"))
	}
	_ = raw.SetDeadline(time.Time{})
	return st, "dialback", nil
}

// externalOut authenticates st with SASL EXTERNAL (our certificate); false
// when the peer refused it, and dialback may follow.
func (f *s2sService) externalOut(st *s2sStream, our, domain string) (bool, error) {
	auth := simpleElement(nsSASL, "auth", base64.StdEncoding.EncodeToString([]byte(our)), "mechanism", "EXTERNAL")
	if err := st.writeElement(auth); err != nil {
		return false, err
	}
	e, err := st.next(maxNegotiationBytes)
	if err != nil {
		return false, err
	}
	if e.start.Name != (nameSASLSuccess) {
		return false, nil
	}
	st.restart()
	if err := st.writeHeader(our, domain, ""); err != nil {
		return false, err
	}
	if _, _, _, err := st.readHeader(); err != nil {
		return false, err
	}
	_, err = st.features()
	return err == nil, err
}

// offersExternal reports whether stream features offer SASL EXTERNAL.
func offersExternal(feats element) bool {
	m, ok := feats.child(nameMechanisms)
	if !ok {
		return false
	}
	for _, c := range m.children() {
		if c.start.Name.Local == "mechanism" && c.text() == "EXTERNAL" {
			return true
		}
	}
	return false
}

// startTLSOut opens our stream on a plain connection and asks for
// STARTTLS, which the peer must offer (RFC 6120 § 5); the TLS handshake is
// the caller's.
func (st *s2sStream) startTLSOut(our, domain string) error {
	if err := st.writeHeader(our, domain, ""); err != nil {
		return err
	}
	if _, _, _, err := st.readHeader(); err != nil {
		return err
	}
	feats, err := st.features()
	if err != nil {
		return err
	}
	if _, ok := feats.child(nameStartTLS); !ok {
		return errS2SNoTLS
	}
	if err := st.writeElement(simpleElement(nsTLS, "starttls", "")); err != nil {
		return err
	}
	e, err := st.next(maxNegotiationBytes)
	if err != nil {
		return err
	}
	if e.start.Name != nameProceed {
		return fmt.Errorf("%w: no proceed to starttls", errS2SProtocol)
	}
	return nil
}
