package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"
)

// Where a remote domain's server listens: an -s2s-hosts entry, else DNS
// SRV records of both kinds, RFC 6120 § 3.2.1 (_xmpp-server._tcp,
// STARTTLS) and XEP-0368 (_xmpps-server._tcp, TLS from the first byte),
// else the domain itself on port 5269 with STARTTLS.

// s2sTarget is one address to try for a remote domain.
type s2sTarget struct {
	addr      string // host:port
	directTLS bool   // TLS from the first byte (XEP-0368), else STARTTLS
}

func (t s2sTarget) String() string {
	if t.directTLS {
		return "tls://" + t.addr
	}
	return t.addr
}

// srvResolver looks up DNS SRV records; *net.Resolver is one. Tests give
// the federation a fake.
type srvResolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (cname string, addrs []*net.SRV, err error)
}

// parseS2SHosts parses -s2s-hosts: "domain=host:port,..." where an address
// written tls://host:port is a direct TLS port (XEP-0368) and a bare
// host:port a STARTTLS one.
func parseS2SHosts(v string) (map[string]s2sTarget, error) {
	m := make(map[string]s2sTarget)
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, addr, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("-s2s-hosts: %q is not domain=host:port or domain=tls://host:port", f)
		}
		target := s2sTarget{addr: addr}
		if rest, ok := strings.CutPrefix(addr, "tls://"); ok {
			target = s2sTarget{addr: rest, directTLS: true}
		}
		if _, _, err := net.SplitHostPort(target.addr); err != nil {
			return nil, fmt.Errorf("-s2s-hosts: %q: %w", f, err)
		}
		j, err := jid.New("", d, "")
		if err != nil || j.Domainpart() != d {
			return nil, fmt.Errorf("-s2s-hosts: bad domain %q", d)
		}
		m[d] = target
	}
	return m, nil
}

// resolve returns the addresses to try for domain, in order: the
// -s2s-hosts entry, else the SRV records of _xmpps-server._tcp (direct
// TLS) and _xmpp-server._tcp (STARTTLS) ordered by orderSRV, else the
// domain on port 5269 (STARTTLS). A kind whose only record has the target
// "." is not offered (RFC 2782); when neither kind is offered that way,
// the domain has no federation and nothing is tried.
func (f *s2sService) resolve(ctx context.Context, domain string) ([]s2sTarget, error) {
	if t, ok := f.hosts[domain]; ok {
		return []s2sTarget{t}, nil
	}
	r := f.resolver
	if r == nil {
		r = net.DefaultResolver
	}
	// A failed lookup (no such name, no record) counts as no record.
	_, direct, _ := r.LookupSRV(ctx, "xmpps-server", "tcp", domain)
	_, plain, _ := r.LookupSRV(ctx, "xmpp-server", "tcp", domain)
	direct, directOff := usableSRV(direct)
	plain, plainOff := usableSRV(plain)
	if len(direct) == 0 && len(plain) == 0 {
		if directOff || plainOff {
			return nil, fmt.Errorf("s2s: %w: no federation offered", errS2SRefused)
		}
		return []s2sTarget{{addr: net.JoinHostPort(domain, defaultS2SPort)}}, nil
	}
	rnd := f.rnd
	if rnd == nil {
		rnd = randIntN
	}
	return orderSRV(direct, plain, rnd), nil
}

// usableSRV drops records without a target; off reports the RFC 2782 "."
// record, the service decidedly not offered.
func usableSRV(recs []*net.SRV) (out []*net.SRV, off bool) {
	for _, r := range recs {
		if r == nil {
			continue
		}
		if r.Target == "." || r.Target == "" {
			off = off || len(recs) == 1
			continue
		}
		out = append(out, r)
	}
	return out, off
}

// orderSRV merges the direct TLS and STARTTLS records into the order of
// connection attempts: by priority, lowest first (RFC 2782); at equal
// priority direct TLS first (XEP-0368 § 3: it saves the round trips of
// STARTTLS); within one priority and kind, by RFC 2782's weighted random
// choice, where rnd(n) returns a number in [0, n).
func orderSRV(direct, plain []*net.SRV, rnd func(int) int) []s2sTarget {
	type group struct {
		prio   uint16
		direct bool
		recs   []*net.SRV
	}
	var groups []*group
	add := func(recs []*net.SRV, isDirect bool) {
		for _, r := range recs {
			i := slices.IndexFunc(groups, func(g *group) bool { return g.prio == r.Priority && g.direct == isDirect })
			if i < 0 {
				groups = append(groups, &group{prio: r.Priority, direct: isDirect})
				i = len(groups) - 1
			}
			groups[i].recs = append(groups[i].recs, r)
		}
	}
	add(direct, true)
	add(plain, false)
	slices.SortStableFunc(groups, func(a, b *group) int {
		if a.prio != b.prio {
			return int(a.prio) - int(b.prio)
		}
		switch {
		case a.direct == b.direct:
			return 0
		case a.direct:
			return -1
		}
		return 1
	})
	var out []s2sTarget
	for _, g := range groups {
		for _, r := range weightedOrder(g.recs, rnd) {
			out = append(out, s2sTarget{
				addr:      net.JoinHostPort(strings.TrimSuffix(r.Target, "."), strconv.Itoa(int(r.Port))),
				directTLS: g.direct,
			})
		}
	}
	return out
}

// weightedOrder orders records of one priority by RFC 2782's selection:
// records of weight 0 first, then repeatedly a random number in [0, sum
// of the weights] picks the first record whose running sum reaches it.
func weightedOrder(recs []*net.SRV, rnd func(int) int) []*net.SRV {
	left := make([]*net.SRV, 0, len(recs))
	for _, r := range recs { // weight 0 first, keeping their order
		if r.Weight == 0 {
			left = append(left, r)
		}
	}
	for _, r := range recs {
		if r.Weight != 0 {
			left = append(left, r)
		}
	}
	out := make([]*net.SRV, 0, len(recs))
	for len(left) > 0 {
		sum := 0
		for _, r := range left {
			sum += int(r.Weight)
		}
		pick := rnd(sum + 1)
		i, run := 0, 0
		for ; i < len(left)-1; i++ {
			run += int(left[i].Weight)
			if run >= pick {
				break
			}
		}
		out = append(out, left[i])
		left = slices.Delete(left, i, i+1)
	}
	return out
}

// randIntN is rand.IntN: the spread of load over SRV targets needs no
// secret randomness.
func randIntN(n int) int { return rand.IntN(n) }
