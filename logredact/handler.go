package logredact

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Handler is a slog.Handler that anonymizes IP addresses before passing
// records to the next handler. It finds addresses in the message and in
// every attribute (keys included), inside groups, in attributes given to
// WithAttrs, and in values resolved from slog.LogValuer:
//
//   - netip.Addr, netip.AddrPort, netip.Prefix, net.IP, *net.TCPAddr,
//     *net.UDPAddr and *net.IPAddr become the string of the anonymized
//     address, as their String method writes it ("192.0.2.0:5222"; the
//     standard JSON and text handlers print the netip and net.IP types
//     that way too, but print a *net.TCPAddr as a struct); in Drop mode, a
//     string holding the marker (and the port);
//   - strings, and the text of other net.Addr, error and fmt.Stringer
//     values, are scanned for addresses in any textual form (IPv4, IPv6
//     compressed or full, [v6]:port, IPv4-mapped, with zone), which are
//     replaced in place;
//   - []string, []net.IP, []netip.Addr and []netip.AddrPort become a
//     []string with the addresses anonymized;
//   - other kinds (numbers, times, bools) cannot hold an address and are
//     passed untouched; so are values of other types given to slog.Any,
//     which the next handler may encode in ways this package cannot see
//     (convert them to strings or LogValuers).
//
// A record without any address is passed on as is, without allocating.
//
// Between Reveal and the end of the maintenance window, addresses are passed
// in full and every record carries the Options.RevealedKey attribute (at
// the top level, outside any group).
//
// A Handler and all the handlers derived from it by WithAttrs and WithGroup
// share one configuration, key ring and maintenance window. It is safe for
// concurrent use.
type Handler struct {
	st    *shared
	ops   []op // WithAttrs/WithGroup calls, raw, in order
	cache atomic.Pointer[built]
}

// op is one WithAttrs (group == "") or WithGroup call.
type op struct {
	group string
	attrs []slog.Attr
}

// built is the next handler with the ops applied, redacted as of epoch.
type built struct {
	epoch uint64
	next  slog.Handler
}

// shared is the state common to a Handler and its derivatives.
type shared struct {
	an           *anonymizer
	base         slog.Handler // the wrapped handler; audit records go here
	revealedBase slog.Handler // base with the marker attribute

	// window is the open (or expired but not yet logged) maintenance
	// window, nil when there is none. Its times keep the monotonic clock
	// reading of time.Now, so a wall-clock step cannot stretch it.
	window atomic.Pointer[window]

	mu sync.Mutex // serializes window changes and their audit records
}

// window is one maintenance window.
type window struct {
	start, until time.Time
	reason       string
}

// NewHandler returns a Handler that anonymizes IP addresses and passes the
// records to next. opts may be nil: the zero Options is the private default.
func NewHandler(next slog.Handler, opts *Options) *Handler {
	an := newAnonymizer(opts)
	return &Handler{st: &shared{
		an:           an,
		base:         next,
		revealedBase: next.WithAttrs([]slog.Attr{slog.Bool(an.revealKey, true)}),
	}}
}

// Enabled reports whether the next handler handles records at level l.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.st.base.Enabled(ctx, l)
}

// WithAttrs returns a Handler whose records carry attrs (anonymized like
// the record's own attributes).
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(op{attrs: attrs})
}

// WithGroup returns a Handler that puts the attributes that follow in group
// name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(op{group: name})
}

func (h *Handler) with(o op) *Handler {
	ops := make([]op, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return &Handler{st: h.st, ops: append(ops, o)}
}

// Handle anonymizes the addresses in r and passes it to the next handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	v, revealed, epoch, err := h.st.state(ctx)
	next := h.next(v, revealed, epoch)
	if revealed {
		// next carries the marker attribute, outside any group.
		return joinErr(err, next.Handle(ctx, r))
	}

	var msgSpans []span
	if mayHoldAddr(r.Message) {
		msgSpans = scan(r.Message, nil)
	}
	// Find the first attribute that changes, without allocating.
	idx, i := -1, 0
	var first slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		if !mayChange(a) {
			i++
			return true
		}
		if na, ch := v.attr(a); ch {
			idx, first = i, na
			return false
		}
		i++
		return true
	})
	if idx < 0 && len(msgSpans) == 0 {
		return joinErr(err, next.Handle(ctx, r))
	}
	msg := r.Message
	if len(msgSpans) > 0 {
		msg = string(appendScrubbed(make([]byte, 0, len(msg)+8), msg, msgSpans, v))
	}
	nr := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	var buf [8]slog.Attr
	attrs := buf[:0]
	i = 0
	r.Attrs(func(a slog.Attr) bool {
		switch {
		case idx < 0 || i < idx:
			// Unchanged: checked above.
		case i == idx:
			a = first
		default:
			if mayChange(a) {
				a, _ = v.attr(a)
			}
		}
		attrs = append(attrs, a)
		i++
		return true
	})
	nr.AddAttrs(attrs...)
	return joinErr(err, next.Handle(ctx, nr))
}

// next returns the wrapped handler with the WithAttrs/WithGroup calls
// replayed, their attributes anonymized as of epoch (the key of the day and
// whether a window is open), so that attributes bound to a long-lived logger
// follow key rotation and are hidden again when a window closes.
func (h *Handler) next(v view, revealed bool, epoch uint64) slog.Handler {
	base := h.st.base
	if revealed {
		base = h.st.revealedBase
	}
	if len(h.ops) == 0 {
		return base
	}
	if b := h.cache.Load(); b != nil && b.epoch == epoch {
		return b.next
	}
	n := base
	for _, o := range h.ops {
		if o.group != "" {
			name := o.group
			if !revealed && mayHoldAddr(name) {
				if kv, ch := v.scanText(slog.Value{}, name); ch {
					name = kv.String()
				}
			}
			n = n.WithGroup(name)
			continue
		}
		attrs := o.attrs
		if !revealed {
			attrs = v.attrs(attrs)
		}
		n = n.WithAttrs(attrs)
	}
	h.cache.Store(&built{epoch: epoch, next: n})
	return n
}

// state returns the view to anonymize a record with, whether a maintenance
// window is open, and the epoch of that state. It closes an expired window
// (logging its end) on the way.
func (s *shared) state(ctx context.Context) (v view, revealed bool, epoch uint64, err error) {
	if w := s.window.Load(); w != nil {
		if s.an.now().Before(w.until) {
			return view{an: s.an}, true, 1, nil
		}
		err = s.closeExpired(ctx)
	}
	v = view{an: s.an}
	if s.an.mode == Pseudonymize {
		var gen uint64
		v.day, gen = s.an.keys.current()
		epoch = gen << 1
	}
	return v, false, epoch, err
}

// mayChange is a cheap test that a could hold an address: a key or a
// string value with enough separators, or a kind that needs a closer look.
func mayChange(a slog.Attr) bool {
	if mayHoldAddr(a.Key) {
		return true
	}
	val := a.Value
	switch val.Kind() {
	case slog.KindString:
		return mayHoldAddr(val.String())
	case slog.KindAny, slog.KindLogValuer, slog.KindGroup:
		return true
	}
	return false
}

// attrs returns attrs anonymized, sharing the slice when nothing changes.
func (v view) attrs(attrs []slog.Attr) []slog.Attr {
	for i, a := range attrs {
		na, ch := v.attr(a)
		if !ch {
			continue
		}
		out := make([]slog.Attr, len(attrs))
		copy(out, attrs[:i])
		out[i] = na
		for j := i + 1; j < len(attrs); j++ {
			out[j], _ = v.attr(attrs[j])
		}
		return out
	}
	return attrs
}

// attr anonymizes one attribute and reports whether it changed.
// The key is anonymized too: a map of per-client counters logged as a
// group has addresses for keys.
func (v view) attr(a slog.Attr) (slog.Attr, bool) {
	nv, ch := v.value(a.Value)
	key := a.Key
	if mayHoldAddr(key) {
		if kv, kch := v.scanText(slog.Value{}, key); kch {
			key, ch = kv.String(), true
		}
	}
	if !ch {
		return a, false
	}
	return slog.Attr{Key: key, Value: nv}, true
}

func (v view) value(val slog.Value) (slog.Value, bool) {
	switch val.Kind() {
	case slog.KindString:
		return v.text(val, val.String())
	case slog.KindGroup:
		g := val.Group()
		ng := v.attrs(g)
		if len(g) > 0 && &ng[0] == &g[0] {
			return val, false
		}
		return slog.GroupValue(ng...), true
	case slog.KindLogValuer:
		// What is checked is what is written: resolve once, here.
		r := val.Resolve()
		nv, _ := v.value(r)
		return nv, true
	case slog.KindAny:
		return v.any(val)
	}
	return val, false
}

// any anonymizes the address types listed in the Handler documentation.
func (v view) any(val slog.Value) (slog.Value, bool) {
	drop := v.an.mode == Drop
	switch x := val.Any().(type) {
	case netip.Addr:
		if !x.IsValid() {
			return val, false
		}
		if drop {
			return slog.StringValue(v.an.marker), true
		}
		return slog.StringValue(v.addr(x).String()), true
	case netip.AddrPort:
		if !x.Addr().IsValid() {
			return val, false
		}
		if drop {
			return slog.StringValue(v.withPort(x.Port())), true
		}
		return slog.StringValue(netip.AddrPortFrom(v.addr(x.Addr()), x.Port()).String()), true
	case netip.Prefix:
		if !x.IsValid() {
			return val, false
		}
		if drop {
			return slog.StringValue(v.an.marker), true
		}
		p, _ := v.addr(x.Addr()).Prefix(x.Bits())
		return slog.StringValue(p.String()), true
	case net.IP:
		ip, ok := v.netIP(x)
		if !ok {
			return val, false
		}
		if drop {
			return slog.StringValue(v.an.marker), true
		}
		return slog.StringValue(ip.String()), true
	case *net.TCPAddr:
		if x == nil {
			return val, false
		}
		ip, ok := v.netIP(x.IP)
		if !ok {
			return val, false
		}
		if drop {
			return slog.StringValue(v.withPort(uint16(x.Port))), true
		}
		return slog.StringValue((&net.TCPAddr{IP: ip, Port: x.Port, Zone: x.Zone}).String()), true
	case *net.UDPAddr:
		if x == nil {
			return val, false
		}
		ip, ok := v.netIP(x.IP)
		if !ok {
			return val, false
		}
		if drop {
			return slog.StringValue(v.withPort(uint16(x.Port))), true
		}
		return slog.StringValue((&net.UDPAddr{IP: ip, Port: x.Port, Zone: x.Zone}).String()), true
	case *net.IPAddr:
		if x == nil {
			return val, false
		}
		ip, ok := v.netIP(x.IP)
		if !ok {
			return val, false
		}
		if drop {
			return slog.StringValue(v.an.marker), true
		}
		return slog.StringValue((&net.IPAddr{IP: ip, Zone: x.Zone}).String()), true
	case net.Addr:
		return v.text(val, safeString(x.String))
	case error:
		return v.text(val, safeString(x.Error))
	case fmt.Stringer:
		return v.text(val, safeString(x.String))
	case []string:
		return v.texts(val, len(x), func(i int) string { return x[i] })
	case []net.IP:
		return v.texts(val, len(x), func(i int) string { return x[i].String() })
	case []netip.Addr:
		return v.texts(val, len(x), func(i int) string { return x[i].String() })
	case []netip.AddrPort:
		return v.texts(val, len(x), func(i int) string { return x[i].String() })
	}
	return val, false
}

// texts anonymizes a slice of n texts (elem(i) is the i-th), returning a
// []string when any of them held an address.
func (v view) texts(val slog.Value, n int, elem func(int) string) (slog.Value, bool) {
	var out []string
	for i := range n {
		s := elem(i)
		if nv, ch := v.text(slog.Value{}, s); ch {
			if out == nil {
				out = make([]string, n)
				for j := range i {
					out[j] = elem(j)
				}
			}
			s = nv.String()
		}
		if out != nil {
			out[i] = s
		}
	}
	if out == nil {
		return val, false
	}
	return slog.AnyValue(out), true
}

// netIP anonymizes a net.IP; ok is false when ip is not an address.
func (v view) netIP(ip net.IP) (net.IP, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return nil, false
	}
	return net.IP(v.addr(a.Unmap()).AsSlice()), true
}

func (v view) withPort(port uint16) string {
	return v.an.marker + ":" + strconv.Itoa(int(port))
}

// text scans s (the text of val) and returns a string value with the
// addresses replaced, or val unchanged when s holds none.
func (v view) text(val slog.Value, s string) (slog.Value, bool) {
	if !mayHoldAddr(s) {
		return val, false
	}
	return v.scanText(val, s)
}

// scanText is text for a string that passed mayHoldAddr.
func (v view) scanText(val slog.Value, s string) (slog.Value, bool) {
	var out [64]byte
	// The commonest case, a string that is one address (and port), skips
	// the general scan.
	if sp, ok := exactSpan(s); ok {
		b := append(out[:0], s[:sp.start]...)
		b = v.appendAddr(b, sp.addr)
		b = append(b, s[sp.end:]...)
		return slog.StringValue(string(b)), true
	}
	var buf [2]span
	spans := scan(s, buf[:0])
	if len(spans) == 0 {
		return val, false
	}
	return slog.StringValue(string(appendScrubbed(out[:0], s, spans, v))), true
}

// safeString calls f, turning a panic (a nil pointer receiver, say) into an
// empty string: a log call must not crash the server.
func safeString(f func() string) (s string) {
	defer func() {
		if recover() != nil {
			s = ""
		}
	}()
	return f()
}

func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	return fmt.Errorf("%w; %w", a, b)
}
