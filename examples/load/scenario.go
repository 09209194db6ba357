package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// result is what one scenario measured. Rates and per-message figures are
// over the measured phase only (not registration or login).
type result struct {
	Server   string  `json:"server"`
	Scenario string  `json:"scenario"`
	Users    int     `json:"users"`
	Rate     float64 `json:"rate,omitempty"` // open loop: scheduled messages per second in total
	SM       bool    `json:"sm,omitempty"`   // XEP-0198 on every session

	Messages  int     `json:"messages,omitempty"`   // messages sent, pages read or files uploaded
	Delivered int64   `json:"delivered,omitempty"`  // messages received (all recipients)
	Bounced   int64   `json:"bounced,omitempty"`    // error stanzas received instead
	Seconds   float64 `json:"seconds"`              // wall time of the measured phase
	PerSecond float64 `json:"per_second,omitempty"` // Messages per second
	Latency   summary `json:"latency"`              // hop, page or upload time
	Bytes     int64   `json:"bytes,omitempty"`      // uploaded bytes
	MBps      float64 `json:"mb_per_s,omitempty"`   // uploaded MB (10^6 bytes) per second

	ServerCPU     float64 `json:"server_cpu_s,omitempty"` // server user+system CPU during the phase
	CPUPerMessage float64 `json:"cpu_per_message_us,omitempty"`
	RSSStartKiB   int64   `json:"rss_start_kib,omitempty"`
	RSSEndKiB     int64   `json:"rss_end_kib,omitempty"`
	HWMKiB        int64   `json:"hwm_kib,omitempty"`
	PerSessionKiB float64 `json:"per_session_kib,omitempty"` // idle: RSS growth per session

	Error string `json:"error,omitempty"`
}

// run holds what every scenario needs.
type run struct {
	tg      target
	accts   []account
	opts    options
	http    *http.Client
	clients []*client
}

// loginAll logs every account in, conc at a time, sends initial presence
// and, with archive, turns the archive on. after, if set, is called after
// each login with the number logged in so far.
func (r *run) loginAll(ctx context.Context, accts []account, archive bool, after func(int)) ([]*client, error) {
	cs := make([]*client, len(accts))
	var firstErr error
	var mu sync.Mutex
	var done atomic.Int64
	sem := make(chan struct{}, max(1, r.opts.conc))
	var wg sync.WaitGroup
	for i, a := range accts {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := r.tg.login(ctx, a)
			if err == nil {
				err = c.writeRaw(`<presence/>`)
			}
			if err == nil && archive {
				err = c.archiveAlways()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				if c != nil {
					go c.close()
				}
				return
			}
			cs[i] = c
			if after != nil {
				after(int(done.Add(1)))
			}
		}()
	}
	wg.Wait()
	r.clients = append(r.clients, cs...)
	if firstErr != nil {
		return nil, firstErr
	}
	return cs, nil
}

// closeAll ends every session opened by loginAll.
func (r *run) closeAll() {
	var wg sync.WaitGroup
	for _, c := range r.clients {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); c.close() }()
		}
	}
	wg.Wait()
	r.clients = nil
}

// traffic counts the load messages of one phase on the receiving side.
type traffic struct {
	lat       latencies
	delivered atomic.Int64
	bounced   atomic.Int64
	want      int64
	done      chan struct{}
	once      sync.Once
	windows   []chan struct{} // per sender; nil when the senders do not wait
	echo      bool            // rooms: a sender's window opens when its own copy returns

	// Open loop (rate > 0): message seq of sender i is due at
	// t0 + (seq·senders + i)/rate seconds and carries that time.
	rate    float64
	senders int
	t0      time.Duration
}

// schedule makes the senders open-loop at rate messages per second in
// total, from now.
func (tr *traffic) schedule(rate float64, senders int) {
	tr.rate, tr.senders, tr.t0 = rate, senders, since()
}

// due is the scheduled send time of message seq of sender i.
func (tr *traffic) due(i, seq int) time.Duration {
	return tr.t0 + time.Duration(float64(seq*tr.senders+i)*float64(time.Second)/tr.rate)
}

func newTraffic(want int64, senders, window int, echo bool) *traffic {
	tr := &traffic{want: want, done: make(chan struct{}), echo: echo}
	if window > 0 {
		tr.windows = make([]chan struct{}, senders)
		for i := range tr.windows {
			tr.windows[i] = make(chan struct{}, window)
		}
	}
	return tr
}

// body is the text of a load message: sender index, sequence number and
// the send time on the process's monotonic clock.
func body(sender, seq int, at time.Duration) string {
	return "load " + strconv.Itoa(sender) + " " + strconv.Itoa(seq) + " " + strconv.FormatInt(int64(at), 10)
}

// parseBody reverses body.
func parseBody(s string) (sender, seq int, at time.Duration, ok bool) {
	f := strings.Fields(s)
	if len(f) != 4 || f[0] != "load" {
		return 0, 0, 0, false
	}
	a, err1 := strconv.Atoi(f[1])
	b, err2 := strconv.Atoi(f[2])
	c, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || a < 0 || b < 0 || c < 0 {
		return 0, 0, 0, false
	}
	return a, b, time.Duration(c), true
}

// receiver returns the message handler of the client with index self.
func (tr *traffic) receiver(self int) func(*node, time.Duration) {
	return func(n *node, at time.Duration) {
		if n.child("", "result") != nil { // a MAM result, not a delivery
			return
		}
		sender, _, sent, ok := parseBody(n.child("", "body").text())
		if !ok {
			return
		}
		if n.attr("type") == "error" {
			tr.bounced.Add(1)
		} else {
			tr.lat.add(at - sent)
		}
		if tr.windows != nil && sender < len(tr.windows) && (!tr.echo || sender == self || n.attr("type") == "error") {
			select {
			case <-tr.windows[sender]:
			default:
			}
		}
		if tr.delivered.Add(1) == tr.want {
			tr.once.Do(func() { close(tr.done) })
		}
	}
}

// send writes count load messages from c (sender index i) to to,
// respecting the window.
func (tr *traffic) send(c *client, i, count int, to, typ string) error {
	for seq := range count {
		if tr.windows != nil {
			select {
			case tr.windows[i] <- struct{}{}:
			default: // the window is full: wait for a delivery, not forever
				t := time.NewTimer(c.timeout)
				select {
				case tr.windows[i] <- struct{}{}:
					t.Stop()
				case <-c.done:
					t.Stop()
					return ErrClosed
				case <-t.C:
					return fmt.Errorf("%w: no delivery for %v with %d messages in flight", ErrTimeout, c.timeout, cap(tr.windows[i]))
				}
			}
		}
		at := since()
		if tr.rate > 0 {
			// Open loop: wait for the message's time; when behind, send at
			// once, still stamped with the time it was due.
			at = tr.due(i, seq)
			if d := at - since(); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-c.done:
					t.Stop()
					return ErrClosed
				}
			}
		}
		if err := c.sendMessage(to, typ, body(i, seq, at)); err != nil {
			return err
		}
	}
	return nil
}

// wait waits for every expected message, or the timeout.
func (tr *traffic) wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tr.done:
		return nil
	case <-t.C:
		return fmt.Errorf("%w: %d of %d messages arrived", ErrTimeout, tr.delivered.Load(), tr.want)
	}
}

// phase measures the server's CPU and memory around f.
type phase struct {
	pid    int
	before procSample
	start  time.Time
}

func startPhase(pid int) (*phase, error) {
	p := &phase{pid: pid}
	if pid > 0 {
		s, err := sampleProc(pid)
		if err != nil {
			return nil, fmt.Errorf("server process: %w", err)
		}
		p.before = s
	}
	p.start = time.Now()
	return p, nil
}

// end fills the time, CPU and memory fields of res; per is the count the
// CPU is divided by.
func (p *phase) end(res *result, per int64) {
	res.Seconds = time.Since(p.start).Seconds()
	if p.pid <= 0 {
		return
	}
	s, err := sampleProc(p.pid)
	if err != nil {
		res.Error = errors.Join(errors.New(res.Error), err).Error()
		return
	}
	cpu := s.CPU - p.before.CPU
	res.ServerCPU = cpu.Seconds()
	if per > 0 {
		res.CPUPerMessage = float64(cpu.Microseconds()) / float64(per)
	}
	res.RSSStartKiB, res.RSSEndKiB, res.HWMKiB = p.before.RSS>>10, s.RSS>>10, s.HWM>>10
}

// pairs is the pipelined and senders scenarios: k senders, each pipelining
// n/k chat messages to its own contact's full JID.
func (r *run) pairs(ctx context.Context, res *result, k int) error {
	if len(r.accts) < 2*k {
		return fmt.Errorf("%d users needed, %d given", 2*k, len(r.accts))
	}
	cs, err := r.loginAll(ctx, r.accts[:2*k], r.opts.archive, nil)
	if err != nil {
		return err
	}
	per := r.opts.n / k
	total := per * k
	tr := newTraffic(int64(total), k, r.opts.window, false)
	for i := range k {
		cs[k+i].onMessage.Store(ptr(tr.receiver(k + i)))
		cs[i].onMessage.Store(ptr(tr.receiver(i))) // bounces come back here
	}
	ph, err := startPhase(r.opts.serverPID)
	if err != nil {
		return err
	}
	if r.opts.rate > 0 {
		tr.schedule(r.opts.rate, k)
	}
	errs := make(chan error, k)
	for i := range k {
		go func() { errs <- tr.send(cs[i], i, per, cs[k+i].jid.String(), "chat") }()
	}
	for range k {
		if err := <-errs; err != nil {
			return err
		}
	}
	err = tr.wait(r.opts.timeout)
	ph.end(res, int64(total))
	res.Messages, res.Delivered, res.Bounced = total, tr.delivered.Load()-tr.bounced.Load(), tr.bounced.Load()
	res.PerSecond = float64(res.Delivered) / res.Seconds
	res.Latency = tr.lat.summary()
	return err
}

// rooms is k occupants of one new room each sending n/k groupchat
// messages; every occupant receives every message.
func (r *run) rooms(ctx context.Context, res *result, k int) error {
	if len(r.accts) < k {
		return fmt.Errorf("%d users needed, %d given", k, len(r.accts))
	}
	cs, err := r.loginAll(ctx, r.accts[:k], false, nil)
	if err != nil {
		return err
	}
	service := r.opts.mucService
	if service == "" {
		service = "conference." + r.tg.Domain
	}
	var idb [6]byte
	_, _ = rand.Read(idb[:])
	room := fmt.Sprintf("load%x@%s", idb, service)
	per := r.opts.n / k
	total := per * k
	tr := newTraffic(int64(total*k), k, r.opts.window, true)
	for i, c := range cs {
		joined := make(chan *node, 1)
		c.onMessage.Store(ptr(tr.receiver(i)))
		if err := c.join(room, joined); err != nil {
			return err
		}
		var self *node
		select {
		case self = <-joined:
		case <-time.After(r.opts.timeout):
			return fmt.Errorf("join %s: %w", c.acct.User, ErrTimeout)
		}
		if self.attr("type") == "error" {
			return fmt.Errorf("join %s: %w (%s)", c.acct.User, ErrRefused, self.errorCondition())
		}
		if i == 0 && hasStatus(self, "201") { // a new room: accept the default configuration
			if _, err := c.iq(`<iq type="set" id="{id}" to="` + escape(room) + `"><query xmlns="` + nsMUCOwner + `"><x xmlns="jabber:x:data" type="submit"/></query></iq>`); err != nil {
				return fmt.Errorf("configure room: %w", err)
			}
		}
	}
	ph, err := startPhase(r.opts.serverPID)
	if err != nil {
		return err
	}
	if r.opts.rate > 0 {
		tr.schedule(r.opts.rate, k)
	}
	errs := make(chan error, k)
	for i := range k {
		go func() { errs <- tr.send(cs[i], i, per, room, "groupchat") }()
	}
	for range k {
		if err := <-errs; err != nil {
			return err
		}
	}
	err = tr.wait(r.opts.timeout)
	ph.end(res, int64(total))
	res.Messages, res.Delivered, res.Bounced = total, tr.delivered.Load()-tr.bounced.Load(), tr.bounced.Load()
	res.PerSecond = float64(total) / res.Seconds
	res.Latency = tr.lat.summary()
	return err
}

// join sends the presence that enters room and hands the room's answer for
// this occupant (its own presence, with status 110, or an error) to joined.
func (c *client) join(room string, joined chan<- *node) error {
	nick := room + "/" + c.acct.User
	c.presence.Store(ptr(func(n *node) {
		if n.attr("from") != nick {
			return
		}
		if n.attr("type") == "error" || hasStatus(n, "110") {
			select {
			case joined <- n:
			default:
			}
		}
	}))
	return c.writeRaw(`<presence to="` + escape(nick) + `"><x xmlns="` + nsMUC + `"><history maxstanzas="0"/></x></presence>`)
}

// hasStatus reports whether a MUC presence carries status code.
func hasStatus(n *node, code string) bool {
	x := n.child(nsMUCUser, "x")
	if x == nil {
		return false
	}
	for _, s := range x.Children {
		if s.Name.Local == "status" && s.attr("code") == code {
			return true
		}
	}
	return false
}

// mam fills the archive of two users with n messages (pipelined, not
// measured) and then pages through the recipient's archive of the sender
// with RSM pages of -page, timing each page.
func (r *run) mam(ctx context.Context, res *result) error {
	if len(r.accts) < 2 {
		return fmt.Errorf("2 users needed, %d given", len(r.accts))
	}
	cs, err := r.loginAll(ctx, r.accts[:2], true, nil)
	if err != nil {
		return err
	}
	a, b := cs[0], cs[1]
	tr := newTraffic(int64(r.opts.n), 1, r.opts.window, false)
	b.onMessage.Store(ptr(tr.receiver(1)))
	if err := tr.send(a, 0, r.opts.n, b.jid.String(), "chat"); err != nil {
		return err
	}
	if err := tr.wait(r.opts.timeout); err != nil {
		return err
	}
	var results atomic.Int64
	b.onMessage.Store(ptr(func(n *node, _ time.Duration) {
		if n.child(nsMAM, "result") != nil {
			results.Add(1)
		}
	}))
	var lat latencies
	ph, err := startPhase(r.opts.serverPID)
	if err != nil {
		return err
	}
	with := a.jid.Bare().String()
	after := ""
	pages := 0
	for {
		set := fmt.Sprintf("<max>%d</max>", r.opts.page)
		if after != "" {
			set += "<after>" + escape(after) + "</after>"
		}
		q := fmt.Sprintf(`<iq type="set" id="{id}"><query xmlns="%s" queryid="p%d"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>%s</value></field><field var="with"><value>%s</value></field></x><set xmlns="%s">%s</set></query></iq>`,
			nsMAM, pages, nsMAM, escape(with), nsRSM, set)
		t0 := since()
		ans, err := b.iq(q)
		if err != nil {
			ph.end(res, int64(pages))
			return fmt.Errorf("MAM page %d: %w", pages, err)
		}
		lat.add(since() - t0)
		pages++
		fin := ans.child(nsMAM, "fin")
		last := fin.child(nsRSM, "set").child(nsRSM, "last").text()
		if fin.attr("complete") == "true" || last == "" || (r.opts.pages > 0 && pages >= r.opts.pages) {
			break
		}
		after = last
	}
	ph.end(res, int64(pages))
	res.Messages, res.Delivered = pages, results.Load()
	res.PerSecond = float64(pages) / res.Seconds
	res.Latency = lat.summary()
	return nil
}

// upload requests n slots (XEP-0363) and PUTs -size bytes to each, k at a
// time, timing slot request plus PUT.
func (r *run) upload(ctx context.Context, res *result, k int) error {
	cs, err := r.loginAll(ctx, r.accts[:1], false, nil)
	if err != nil {
		return err
	}
	c := cs[0]
	service := r.opts.uploadService
	if service == "" {
		if service, err = c.findService(nsUpload); err != nil {
			return err
		}
	}
	data := make([]byte, r.opts.size)
	_, _ = rand.Read(data)
	var lat latencies
	ph, err := startPhase(r.opts.serverPID)
	if err != nil {
		return err
	}
	jobs := make(chan int)
	errs := make(chan error, k)
	for range k {
		go func() {
			var first error
			for i := range jobs {
				t0 := since()
				if err := r.uploadOne(ctx, c, service, i, data); err != nil {
					if first == nil {
						first = err
					}
					continue
				}
				lat.add(since() - t0)
			}
			errs <- first
		}()
	}
	for i := range r.opts.n {
		jobs <- i
	}
	close(jobs)
	for range k {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	ph.end(res, int64(r.opts.n))
	res.Messages = r.opts.n
	res.Bytes = int64(lat.summary().N) * r.opts.size
	res.PerSecond = float64(lat.summary().N) / res.Seconds
	res.MBps = float64(res.Bytes) / 1e6 / res.Seconds
	res.Latency = lat.summary()
	return err
}

func (r *run) uploadOne(ctx context.Context, c *client, service string, i int, data []byte) error {
	name := fmt.Sprintf("load-%d.bin", i)
	ans, err := c.iq(fmt.Sprintf(`<iq type="get" id="{id}" to="%s"><request xmlns="%s" filename="%s" size="%d" content-type="application/octet-stream"/></iq>`,
		escape(service), nsUpload, name, len(data)))
	if err != nil {
		return fmt.Errorf("upload slot: %w", err)
	}
	put := ans.child(nsUpload, "slot").child(nsUpload, "put")
	url := put.attr("url")
	if url == "" {
		return errors.New("upload slot without a PUT URL")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("upload PUT URL: %w", err)
	}
	req.ContentLength = int64(len(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	for _, h := range put.Children {
		if h.Name.Local == "header" {
			switch name := h.attr("name"); strings.ToLower(name) {
			case "authorization", "cookie", "expires": // XEP-0363 § 5: only these
				req.Header.Set(name, h.text())
			}
		}
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("upload PUT: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("upload PUT: %w (HTTP %d)", ErrRefused, resp.StatusCode)
	}
	return nil
}

// findService asks the domain's disco#items for a service with feature.
func (c *client) findService(feature string) (string, error) {
	items, err := c.iq(`<iq type="get" id="{id}" to="` + escape(c.jid.Domain().String()) + `"><query xmlns="` + nsDiscoItems + `"/></iq>`)
	if err != nil {
		return "", fmt.Errorf("disco#items: %w", err)
	}
	for _, it := range items.child(nsDiscoItems, "query").Children {
		j := it.attr("jid")
		if j == "" {
			continue
		}
		info, err := c.iq(`<iq type="get" id="{id}" to="` + escape(j) + `"><query xmlns="` + nsDiscoInfo + `"/></iq>`)
		if err != nil {
			continue
		}
		for _, f := range info.child(nsDiscoInfo, "query").Children {
			if f.Name.Local == "feature" && f.attr("var") == feature {
				return j, nil
			}
		}
	}
	return "", fmt.Errorf("no service with %s in disco#items of %s", feature, c.jid.Domain())
}

// idle logs k sessions in and reports the server's RSS growth per session
// after the first (which also pays for the server's warm-up).
func (r *run) idle(ctx context.Context, res *result, k int) error {
	if len(r.accts) < k || k < 2 {
		return fmt.Errorf("at least 2 and %d users needed, %d given", k, len(r.accts))
	}
	if r.opts.serverPID <= 0 {
		return errors.New("the idle scenario measures the server's memory: give -server-pid")
	}
	if _, err := r.loginAll(ctx, r.accts[:1], false, nil); err != nil {
		return err
	}
	ph, err := startPhase(r.opts.serverPID)
	if err != nil {
		return err
	}
	if _, err := r.loginAll(ctx, r.accts[1:k], false, nil); err != nil {
		return err
	}
	// Every session answers a ping before the sample, so none is still
	// being set up on the server.
	for _, c := range r.clients {
		if _, err := c.iq(`<iq type="get" id="{id}" to="` + escape(c.jid.Domain().String()) + `"><ping xmlns="` + nsPing + `"/></iq>`); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
	ph.end(res, int64(k-1))
	res.Messages = k
	res.PerSessionKiB = float64(res.RSSEndKiB-res.RSSStartKiB) / float64(k-1)
	return nil
}

// httpClient sends every request to addr when it is set (a server whose
// upload host name does not resolve here), with tlsCfg.
func httpClient(addr string, tlsCfg *tls.Config, timeout time.Duration) *http.Client {
	tr := &http.Transport{TLSClientConfig: tlsCfg.Clone(), MaxIdleConnsPerHost: 16}
	tr.TLSClientConfig.ServerName = ""
	if addr != "" {
		d := &net.Dialer{Timeout: timeout}
		tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

func ptr[T any](v T) *T { return &v }
