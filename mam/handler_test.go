package mam_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/forward"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/paging"
	"mellium.im/xmpp/stanza"
)

var (
	_ mux.IQHandler    = (*mam.Handler)(nil)
	_ info.FeatureIter = (*mam.Handler)(nil)
)

// session drives a mux with raw XML as a mellium session would: the IQ start
// element is read, the handler reads the rest from the same decoder and
// writes through the encoder; everything written comes back parsed.
type session struct {
	t   *testing.T
	mux *mux.ServeMux
}

func newSession(t *testing.T, s mam.Store, cfg mam.Config) *session {
	return &session{t: t, mux: mux.New(stanza.NSClient, mam.Handle(mam.NewHandler(s, cfg)))}
}

func (s *session) send(in string) []*elem {
	s.t.Helper()
	d := xml.NewDecoder(strings.NewReader(in))
	tok, err := d.Token()
	if err != nil {
		s.t.Fatal(err)
	}
	start := tok.(xml.StartElement)
	var out bytes.Buffer
	e := xml.NewEncoder(&out)
	rw := struct {
		xml.TokenReader
		xmlstream.Encoder
	}{d, e}
	if err := s.mux.HandleXMPP(rw, &start); err != nil {
		// A non-nil error would end the session.
		s.t.Fatalf("handler returned %v for %s", err, in)
	}
	if err := e.Flush(); err != nil {
		s.t.Fatal(err)
	}
	return parse(s.t, out.Bytes())
}

// iq builds an IQ from juliet/balcony (as the server stamps it).
func iq(typ, to, payload string) string {
	s := `<iq xmlns='jabber:client' type='` + typ + `' id='iq1' from='juliet@example.org/balcony'`
	if to != "" {
		s += ` to='` + to + `'`
	}
	return s + `>` + payload + `</iq>`
}

// wantError asserts that out is exactly one IQ error with the condition.
func wantError(t *testing.T, out []*elem, cond stanza.Condition) {
	t.Helper()
	if len(out) != 1 {
		t.Fatalf("want only an IQ error, got %d elements", len(out))
	}
	r := out[0]
	if r.Name.Local != "iq" || r.Attr["type"] != "error" || r.Attr["id"] != "iq1" {
		t.Fatalf("want IQ error, got %s %v", r.Name.Local, r.Attr)
	}
	e := r.child("jabber:client", "error")
	if e == nil {
		e = r.child("", "error")
	}
	if e == nil || len(e.Children) == 0 || e.Children[0].Name.Local != string(cond) {
		t.Fatalf("want %s, got %+v", cond, e)
	}
	if e.child("urn:ietf:params:xml:ns:xmpp-stanzas", "text") != nil {
		t.Error("error carries text")
	}
}

// fill archives n chat messages from romeo to juliet (who archives always)
// and returns their archive ids in order.
func fill(t *testing.T, s mam.Store, n int) []string {
	t.Helper()
	setPrefs(t, s, juliet, always)
	a := mam.NewArchiver(s, mam.Config{Now: clock()})
	var ids []string
	for i := range n {
		res, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(`<message xmlns='jabber:client' type='chat'><body>msg ` + strconv.Itoa(i) + `</body></message>`)}})
		if err != nil || res.RecipientID == "" {
			t.Fatalf("fill: %+v %v", res, err)
		}
		ids = append(ids, res.RecipientID)
	}
	return ids
}

type results struct {
	ids    []string // result ids in the order sent
	bodies []string
	msgs   []*elem  // the forwarded messages
	stamps []string // the delay stamps, in the order sent
	fin    *elem
	set    *elem
}

// results checks the shape of a query answer: result messages first, then
// one IQ result with <fin/>.
func queryResults(t *testing.T, out []*elem, queryID string) results {
	t.Helper()
	var r results
	if len(out) == 0 {
		t.Fatal("no answer")
	}
	for i, e := range out {
		last := i == len(out)-1
		if !last {
			if e.Name.Local != "message" || e.Attr["from"] != "juliet@example.org" || e.Attr["to"] != "juliet@example.org/balcony" {
				t.Fatalf("element %d: want result message from the archive to the requester, got %s %v", i, e.Name.Local, e.Attr)
			}
			res := e.child(mam.NS, "result")
			if res == nil || res.Attr["queryid"] != queryID || res.Attr["id"] == "" {
				t.Fatalf("element %d: bad <result/>: %+v", i, res)
			}
			fwd := res.child(forward.NS, "forwarded")
			if fwd == nil || fwd.child(stanza.NSDelay, "delay") == nil {
				t.Fatalf("element %d: no forwarded/delay", i)
			}
			if _, err := mam.ParseTime(fwd.child(stanza.NSDelay, "delay").Attr["stamp"]); err != nil {
				t.Fatalf("delay stamp: %v", err)
			}
			m := fwd.child("jabber:client", "message")
			if m == nil {
				t.Fatalf("element %d: no forwarded message", i)
			}
			r.ids = append(r.ids, res.Attr["id"])
			r.stamps = append(r.stamps, fwd.child(stanza.NSDelay, "delay").Attr["stamp"])
			r.msgs = append(r.msgs, m)
			if b := m.child("jabber:client", "body"); b != nil {
				r.bodies = append(r.bodies, b.Text)
			}
			continue
		}
		if e.Name.Local != "iq" || e.Attr["type"] != "result" || e.Attr["id"] != "iq1" {
			t.Fatalf("last element: want IQ result, got %s %v", e.Name.Local, e.Attr)
		}
		r.fin = e.child(mam.NS, "fin")
		if r.fin == nil {
			t.Fatal("IQ result without <fin/>")
		}
		r.set = r.fin.child(paging.NS, "set")
		if r.set == nil {
			t.Fatal("<fin/> without RSM <set/>")
		}
	}
	return r
}

func TestHandlerDiscoFeatures(t *testing.T) {
	var got []string
	h := mam.NewHandler(newStore(), mam.Config{})
	m := mux.New(stanza.NSClient, mam.Handle(h))
	err := m.ForFeatures("", func(f info.Feature) error { got = append(got, f.Var); return nil })
	if err != nil {
		t.Fatal(err)
	}
	joined := " " + strings.Join(got, " ") + " "
	for _, want := range []string{mam.NS, "urn:xmpp:mam:2#extended", "urn:xmpp:mam:2#groupchat-field"} {
		if !strings.Contains(joined, " "+want+" ") {
			t.Errorf("disco features %v lack %s", got, want)
		}
	}
	if f := mam.RoomFeatures(false); len(f) != 0 {
		t.Errorf("room without archiving advertises %v", f)
	}
	if f := mam.RoomFeatures(true); len(f) < 2 || f[0] != mam.NS || f[1] != "urn:xmpp:mam:2#extended" {
		t.Errorf("archiving room advertises %v", f)
	}
}

func TestHandlerQueryAll(t *testing.T) { forEachStore(t, testHandlerQueryAll) }

func testHandlerQueryAll(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	ids := fill(t, s, 3)
	for _, to := range []string{"", "juliet@example.org"} {
		out := newSession(t, s, mam.Config{}).send(iq("set", to, `<query xmlns='urn:xmpp:mam:2' queryid='f27'/>`))
		r := queryResults(t, out, "f27")
		if strings.Join(r.ids, ",") != strings.Join(ids, ",") {
			t.Fatalf("to=%q: ids %v, want %v", to, r.ids, ids)
		}
		if strings.Join(r.bodies, ",") != "msg 0,msg 1,msg 2" {
			t.Errorf("bodies %v", r.bodies)
		}
		if r.msgs[0].Attr["from"] != romeo.String() {
			t.Errorf("forwarded message lost its from: %v", r.msgs[0].Attr)
		}
		if r.fin.Attr["complete"] != "true" || r.fin.Attr["stable"] != "true" {
			t.Errorf("fin %v", r.fin.Attr)
		}
		first, last, count := r.set.child(paging.NS, "first"), r.set.child(paging.NS, "last"), r.set.child(paging.NS, "count")
		if first == nil || first.Text != ids[0] || first.Attr["index"] != "0" || last == nil || last.Text != ids[2] || count == nil || count.Text != "3" {
			t.Errorf("set first=%+v last=%+v count=%+v", first, last, count)
		}
	}
}

func TestHandlerPaging(t *testing.T) { forEachStore(t, testHandlerPaging) }

func testHandlerPaging(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	ids := fill(t, s, 5)
	sess := newSession(t, s, mam.Config{})
	page := func(set string) results {
		t.Helper()
		return queryResults(t, sess.send(iq("set", "", `<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>`+set+`</set></query>`)), "")
	}
	r := page(`<max>2</max>`)
	if strings.Join(r.ids, ",") != strings.Join(ids[:2], ",") || r.fin.Attr["complete"] != "false" {
		t.Fatalf("page 1: %v complete=%s", r.ids, r.fin.Attr["complete"])
	}
	r = page(`<max>2</max><after>` + ids[1] + `</after>`)
	if strings.Join(r.ids, ",") != strings.Join(ids[2:4], ",") {
		t.Fatalf("page 2: %v", r.ids)
	}
	// The index is optional (a store may not know it) but never wrong.
	if idx, ok := r.set.child(paging.NS, "first").Attr["index"]; ok && idx != "2" {
		t.Errorf("page 2: first index %s, want 2", idx)
	}
	r = page(`<max>2</max><after>` + ids[3] + `</after>`)
	if strings.Join(r.ids, ",") != ids[4] || r.fin.Attr["complete"] != "true" {
		t.Fatalf("page 3: %v complete=%s", r.ids, r.fin.Attr["complete"])
	}
	// The last page, by an empty <before/>, in chronological order.
	r = page(`<max>2</max><before/>`)
	if strings.Join(r.ids, ",") != strings.Join(ids[3:], ",") || r.fin.Attr["complete"] != "false" {
		t.Fatalf("last page: %v complete=%s", r.ids, r.fin.Attr["complete"])
	}
	// Backwards from there; the first page going backwards is complete.
	r = page(`<max>2</max><before>` + ids[3] + `</before>`)
	if strings.Join(r.ids, ",") != strings.Join(ids[1:3], ",") {
		t.Fatalf("backwards: %v", r.ids)
	}
	r = page(`<max>2</max><before>` + ids[1] + `</before>`)
	if strings.Join(r.ids, ",") != ids[0] || r.fin.Attr["complete"] != "true" {
		t.Fatalf("backwards to the start: %v complete=%s", r.ids, r.fin.Attr["complete"])
	}
	// A query without max is still paged, at the configured size.
	r = queryResults(t, newSession(t, s, mam.Config{PageSize: 3}).send(iq("set", "", `<query xmlns='urn:xmpp:mam:2'/>`)), "")
	if len(r.ids) != 3 || r.fin.Attr["complete"] != "false" {
		t.Fatalf("default page: %d results", len(r.ids))
	}
	// A huge max is capped by the server.
	r = queryResults(t, newSession(t, s, mam.Config{MaxPageSize: 4}).send(iq("set", "", `<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>100000</max></set></query>`)), "")
	if len(r.ids) != 4 {
		t.Fatalf("capped page: %d results", len(r.ids))
	}
}

func TestHandlerFlipPage(t *testing.T) { forEachStore(t, testHandlerFlipPage) }

func testHandlerFlipPage(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	ids := fill(t, s, 3)
	out := newSession(t, s, mam.Config{}).send(iq("set", "", `<query xmlns='urn:xmpp:mam:2'><flip-page/></query>`))
	r := queryResults(t, out, "")
	if strings.Join(r.ids, ",") != ids[2]+","+ids[1]+","+ids[0] {
		t.Fatalf("flipped order %v", r.ids)
	}
	if r.set.child(paging.NS, "first").Text != ids[0] || r.set.child(paging.NS, "last").Text != ids[2] {
		t.Error("flipping changed the page bounds")
	}
}

func TestHandlerEmptyPage(t *testing.T) { forEachStore(t, testHandlerEmptyPage) }

func testHandlerEmptyPage(t *testing.T, newStore func() mam.Store) {
	for name, query := range map[string]string{
		"empty archive":  `<query xmlns='urn:xmpp:mam:2'/>`,
		"count only":     `<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set></query>`,
		"count only one": `<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>0</max></set></query>`,
		"filter matches": `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data'><field var='with'><value>nurse@example.org</value></field></x></query>`,
	} {
		t.Run(name, func(t *testing.T) {
			s := newStore()
			n := 0
			switch name {
			case "count only one":
				n = len(fill(t, s, 1))
			case "count only", "filter matches":
				n = len(fill(t, s, 2))
			}
			r := queryResults(t, newSession(t, s, mam.Config{}).send(iq("set", "", query)), "")
			if len(r.ids) != 0 {
				t.Fatalf("%d results", len(r.ids))
			}
			if r.set.child(paging.NS, "first") != nil || r.set.child(paging.NS, "last") != nil {
				t.Error("empty page has first/last")
			}
			want := strconv.Itoa(n)
			if name == "filter matches" {
				want = "0"
			}
			if c := r.set.child(paging.NS, "count"); c == nil || c.Text != want {
				t.Errorf("count %+v, want %s", c, want)
			}
			if wantComplete := strconv.FormatBool(want == "0"); r.fin.Attr["complete"] != wantComplete {
				t.Errorf("complete=%s, want %s", r.fin.Attr["complete"], wantComplete)
			}
		})
	}
}

func TestHandlerFilters(t *testing.T) { forEachStore(t, testHandlerFilters) }

func testHandlerFilters(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	setPrefs(t, s, juliet, always)
	a := mam.NewArchiver(s, mam.Config{Now: clock()})
	from := []jid.JID{romeo, jid.MustParse("romeo@example.org/phone"), jid.MustParse("nurse@example.org/kitchen")}
	var ids []string
	for i, f := range from {
		res, err := a.Archive(ctx, mam.Chat{From: f, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(`<message xmlns='jabber:client' type='chat'><body>` + strconv.Itoa(i) + `</body></message>`)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.RecipientID)
	}
	// A groupchat message in the user archive (a server may store them).
	gc, err := s.Append(ctx, mam.Message{Archive: juliet.Bare(), With: jid.MustParse("room@muc.example.org/nick"), Time: epoch.Add(10e9), Groupchat: true,
		Stanza: []byte(`<message xmlns="jabber:client" type="groupchat"><body>gc</body></message>`)})
	if err != nil {
		t.Fatal(err)
	}
	sess := newSession(t, s, mam.Config{})
	form := func(fields string) []string {
		t.Helper()
		out := sess.send(iq("set", "", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>`+fields+`</x></query>`))
		return queryResults(t, out, "").ids
	}
	cases := []struct {
		name   string
		fields string
		want   []string
	}{
		{"bare with matches every resource", field("with", "romeo@example.org"), ids[:2]},
		{"full with matches exactly", field("with", "romeo@example.org/phone"), ids[1:2]},
		{"start inclusive", field("start", mam.FormatTime(epoch.Add(2e9))), ids[1:]},
		{"end inclusive", field("end", mam.FormatTime(epoch.Add(2e9))), ids[:2]},
		{"after-id", field("after-id", ids[0]), ids[1:]},
		{"before-id", field("before-id", ids[2]), ids[:2]},
		{"after-id and before-id", field("after-id", ids[0]) + field("before-id", ids[2]), ids[1:2]},
		{"ids in archive order", field("ids", ids[2], ids[0]), []string{ids[0], ids[2]}},
		{"groupchat excluded by default", "", ids},
		{"include-groupchat", field("include-groupchat", "true"), append(append([]string{}, ids...), gc.ID)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := form(tc.fields); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHandlerQueryErrors(t *testing.T) { forEachStore(t, testHandlerQueryErrors) }

func testHandlerQueryErrors(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	ids := fill(t, s, 2)
	sess := newSession(t, s, mam.Config{})
	form := func(fields string) string {
		return `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'>` + fields + `</x></query>`
	}
	rsm := func(set string) string {
		return `<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>` + set + `</set></query>`
	}
	tests := []struct {
		name string
		to   string
		q    string
		want stanza.Condition
	}{
		{"unknown after-id", "", form(field("after-id", "nope")), stanza.ItemNotFound},
		{"unknown before-id", "", form(field("before-id", "nope")), stanza.ItemNotFound},
		{"unknown id among ids", "", form(field("ids", ids[0], "nope")), stanza.ItemNotFound},
		{"unknown RSM after", "", rsm(`<after>nope</after>`), stanza.ItemNotFound},
		{"unknown RSM before", "", rsm(`<before>nope</before>`), stanza.ItemNotFound},
		{"malformed timestamp", "", form(field("start", "2010-06-07")), stanza.BadRequest},
		{"malformed JID", "", form(field("with", "a@b@c")), stanza.BadRequest},
		{"start after end", "", form(field("start", "2011-01-01T00:00:00Z") + field("end", "2010-01-01T00:00:00Z")), stanza.BadRequest},
		{"garbage max", "", rsm(`<max>lots</max>`), stanza.BadRequest},
		{"negative max", "", rsm(`<max>-5</max>`), stanza.BadRequest},
		{"unknown form field", "", form(field("fulltext", "hello")), stanza.FeatureNotImplemented},
		{"RSM index", "", rsm(`<index>10</index>`), stanza.FeatureNotImplemented},
		{"another user's archive", "romeo@example.org", `<query xmlns='urn:xmpp:mam:2'/>`, stanza.Forbidden},
		{"a resource of another user", "romeo@example.org/orchard", `<query xmlns='urn:xmpp:mam:2'/>`, stanza.Forbidden},
		{"a room without room support", "room@muc.example.org", `<query xmlns='urn:xmpp:mam:2'/>`, stanza.Forbidden},
		{"another user's archive, bad query", "romeo@example.org", form(field("fulltext", "x")), stanza.Forbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, sess.send(iq("set", tc.to, tc.q)), tc.want)
		})
	}
	t.Run("no from", func(t *testing.T) {
		wantError(t, sess.send(`<iq xmlns='jabber:client' type='set' id='iq1'><query xmlns='urn:xmpp:mam:2'/></iq>`), stanza.Forbidden)
	})
	t.Run("form discovery by another user", func(t *testing.T) {
		wantError(t, sess.send(iq("get", "romeo@example.org", `<query xmlns='urn:xmpp:mam:2'/>`)), stanza.Forbidden)
	})
	t.Run("metadata of another user", func(t *testing.T) {
		wantError(t, sess.send(iq("get", "romeo@example.org", `<metadata xmlns='urn:xmpp:mam:2'/>`)), stanza.Forbidden)
	})
}

// brokenStore fails every read.
type brokenStore struct{ mam.Store }

func (brokenStore) Query(context.Context, jid.JID, mam.Query) (mam.Page, error) {
	return mam.Page{}, errors.New("secret internal detail")
}

func (brokenStore) Metadata(context.Context, jid.JID) (mam.Metadata, error) {
	return mam.Metadata{}, errors.New("secret internal detail")
}

func TestHandlerInternalError(t *testing.T) {
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	sess := newSession(t, brokenStore{newStore()}, mam.Config{Logger: logger})
	for _, in := range []string{
		iq("set", "", `<query xmlns='urn:xmpp:mam:2'/>`),
		iq("get", "", `<metadata xmlns='urn:xmpp:mam:2'/>`),
	} {
		out := sess.send(in)
		wantError(t, out, stanza.InternalServerError)
	}
	// The detail goes to the server's log, not to the client.
	if n := strings.Count(log.String(), "secret internal detail"); n != 2 {
		t.Errorf("logged %d internal errors, want 2:\n%s", n, log.String())
	}
	// Client mistakes are answered, not logged.
	log.Reset()
	wantError(t, sess.send(iq("set", "", `<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>x</max></set></query>`)), stanza.BadRequest)
	if log.Len() != 0 {
		t.Errorf("client error logged: %s", log.String())
	}
}

func TestHandlerFormDiscovery(t *testing.T) {
	out := newSession(t, newStore(), mam.Config{}).send(iq("get", "", `<query xmlns='urn:xmpp:mam:2'/>`))
	if len(out) != 1 || out[0].Attr["type"] != "result" {
		t.Fatalf("answer %+v", out)
	}
	q := out[0].child(mam.NS, "query")
	if q == nil {
		t.Fatal("no query")
	}
	x := q.child(form.NS, "x")
	if x == nil || x.Attr["type"] != "form" {
		t.Fatal("no form")
	}
	types := map[string]string{}
	for _, f := range x.all(form.NS, "field") {
		types[f.Attr["var"]] = f.Attr["type"]
		if f.child(form.NS, "required") != nil {
			t.Errorf("field %s marked required", f.Attr["var"])
		}
	}
	want := map[string]string{"FORM_TYPE": "hidden", "with": "jid-single", "start": "text-single", "end": "text-single",
		"before-id": "text-single", "after-id": "text-single", "ids": "list-multi", "include-groupchat": "boolean"}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("field %s has type %q, want %q", k, types[k], v)
		}
	}
	// Every advertised field is accepted by the parser.
	for k := range want {
		if k == "FORM_TYPE" {
			continue
		}
		in := q2(field(k, ""))
		if _, err := mam.ParseQueryBytes([]byte(in), mam.Config{}); err != nil {
			t.Errorf("advertised field %s refused: %v", k, err)
		}
	}
}

func q2(fields string) string { return q(fields, "") }

func TestHandlerMetadata(t *testing.T) { forEachStore(t, testHandlerMetadata) }

func testHandlerMetadata(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	sess := newSession(t, s, mam.Config{})
	out := sess.send(iq("get", "", `<metadata xmlns='urn:xmpp:mam:2'/>`))
	if len(out) != 1 || out[0].Attr["type"] != "result" {
		t.Fatalf("answer %+v", out)
	}
	md := out[0].child(mam.NS, "metadata")
	if md == nil || len(md.Children) != 0 {
		t.Fatalf("empty archive metadata %+v", md)
	}
	ids := fill(t, s, 3)
	out = sess.send(iq("get", "juliet@example.org", `<metadata xmlns='urn:xmpp:mam:2'/>`))
	md = out[0].child(mam.NS, "metadata")
	st, end := md.child(mam.NS, "start"), md.child(mam.NS, "end")
	if st == nil || end == nil || st.Attr["id"] != ids[0] || end.Attr["id"] != ids[2] {
		t.Fatalf("metadata %+v", md)
	}
	if ts, err := mam.ParseTime(st.Attr["timestamp"]); err != nil || !ts.Equal(epoch.Add(1e9)) {
		t.Errorf("start timestamp %q %v", st.Attr["timestamp"], err)
	}
	if ts, err := mam.ParseTime(end.Attr["timestamp"]); err != nil || !ts.Equal(epoch.Add(3e9)) {
		t.Errorf("end timestamp %q %v", end.Attr["timestamp"], err)
	}
}

func TestHandlerPrefs(t *testing.T) { forEachStore(t, testHandlerPrefs) }

func testHandlerPrefs(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	sess := newSession(t, s, mam.Config{})
	get := func() *elem {
		t.Helper()
		out := sess.send(iq("get", "", `<prefs xmlns='urn:xmpp:mam:2'/>`))
		if len(out) != 1 || out[0].Attr["type"] != "result" {
			t.Fatalf("answer %+v", out)
		}
		p := out[0].child(mam.NS, "prefs")
		if p == nil || p.child(mam.NS, "always") == nil || p.child(mam.NS, "never") == nil {
			t.Fatalf("prefs %+v", p)
		}
		return p
	}
	if p := get(); p.Attr["default"] != "never" {
		t.Fatalf("default for a new user is %q, want never", p.Attr["default"])
	}
	out := sess.send(iq("set", "", `<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>romeo@example.org</jid></always><never><jid>nurse@example.org</jid></never></prefs>`))
	if len(out) != 1 || out[0].Attr["type"] != "result" {
		t.Fatalf("set answer %+v", out)
	}
	p := out[0].child(mam.NS, "prefs")
	if p == nil || p.Attr["default"] != "roster" || p.child(mam.NS, "always").child(mam.NS, "jid").Text != "romeo@example.org" ||
		p.child(mam.NS, "never").child(mam.NS, "jid").Text != "nurse@example.org" {
		t.Fatalf("set returned %+v", p)
	}
	stored, err := s.Prefs(ctx, juliet.Bare())
	if err != nil || stored.Default != mam.DefaultRoster || len(stored.Always) != 1 || len(stored.Never) != 1 {
		t.Fatalf("stored %+v %v", stored, err)
	}
	if p := get(); p.Attr["default"] != "roster" {
		t.Errorf("get after set: %v", p.Attr)
	}

	// A bad set changes nothing.
	wantError(t, sess.send(iq("set", "", `<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>`)), stanza.BadRequest)
	wantError(t, sess.send(iq("set", "", `<prefs xmlns='urn:xmpp:mam:2' default='always'><always><jid>@@</jid></always></prefs>`)), stanza.BadRequest)
	if p := get(); p.Attr["default"] != "roster" {
		t.Errorf("bad set changed prefs: %v", p.Attr)
	}
	// Nobody else reads or writes them.
	wantError(t, sess.send(iq("get", "romeo@example.org", `<prefs xmlns='urn:xmpp:mam:2'/>`)), stanza.Forbidden)
	wantError(t, sess.send(iq("set", "romeo@example.org", `<prefs xmlns='urn:xmpp:mam:2' default='always'/>`)), stanza.Forbidden)
	if rp, _ := s.Prefs(ctx, romeo.Bare()); rp.Default == mam.DefaultAlways {
		t.Error("juliet changed romeo's prefs")
	}
}

func TestHandlerUnknownPayload(t *testing.T) {
	h := mam.NewHandler(newStore(), mam.Config{})
	d := xml.NewDecoder(strings.NewReader(`<foo xmlns='urn:xmpp:mam:2'/>`))
	var out bytes.Buffer
	e := xml.NewEncoder(&out)
	start := xml.StartElement{Name: xml.Name{Space: mam.NS, Local: "foo"}}
	err := h.HandleIQ(stanza.IQ{ID: "iq1", Type: stanza.GetIQ, From: juliet}, struct {
		xml.TokenReader
		xmlstream.Encoder
	}{d, e}, &start)
	if err != nil {
		t.Fatal(err)
	}
	e.Flush()
	wantError(t, parse(t, out.Bytes()), stanza.FeatureNotImplemented)
}

// A delay stamp or metadata timestamp fed back as start or end selects
// exactly that message (inclusive bounds survive the round trip, also for
// sub-microsecond clocks).
func TestHandlerStampRoundTrip(t *testing.T) { forEachStore(t, testHandlerStampRoundTrip) }

func testHandlerStampRoundTrip(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	setPrefs(t, s, juliet, always)
	now := epoch.Add(123456789) // .123456789
	a := mam.NewArchiver(s, mam.Config{Now: func() time.Time { now = now.Add(1001); return now }})
	for range 3 {
		if _, err := a.Archive(ctx, mam.Chat{From: romeo, To: juliet.Bare(), Stanza: mam.Stanza{Bytes: []byte(chat)}}); err != nil {
			t.Fatal(err)
		}
	}
	sess := newSession(t, s, mam.Config{})
	all := queryResults(t, sess.send(iq("set", "", `<query xmlns='urn:xmpp:mam:2'/>`)), "")
	if len(all.ids) != 3 {
		t.Fatalf("%d results", len(all.ids))
	}
	out := sess.send(iq("set", "", `<query xmlns='urn:xmpp:mam:2'/>`))
	delay := out[1].child(mam.NS, "result").child(forward.NS, "forwarded").child(stanza.NSDelay, "delay").Attr["stamp"]
	r := queryResults(t, sess.send(iq("set", "", q2(field("start", delay)+field("end", delay)))), "q1")
	if len(r.ids) != 1 || r.ids[0] != all.ids[1] {
		t.Errorf("start=end=%s selected %v, want [%s]", delay, r.ids, all.ids[1])
	}
}

// Stamps are written with microseconds while a stored time may have
// nanoseconds: a start or end filter with a stamp the client got back
// still selects that message, and a client paging by stamps neither skips
// nor repeats one, also for two messages within one microsecond.
func TestHandlerStampsAtMicroseconds(t *testing.T) { forEachStore(t, testHandlerStampsAtMicroseconds) }

func testHandlerStampsAtMicroseconds(t *testing.T, newStore func() mam.Store) {
	s := newStore()
	base := epoch.Add(time.Second)
	offsets := []time.Duration{500, 700, 1000, 1999, 2001} // ns: 0.5µs, 0.7µs, 1µs, 1.999µs, 2.001µs
	var ids []string
	for i, off := range offsets {
		m, err := s.Append(ctx, mam.Message{Archive: juliet.Bare(), With: romeo, Time: base.Add(off),
			Stanza: []byte(`<message xmlns="jabber:client" type="chat"><body>` + strconv.Itoa(i) + `</body></message>`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	sess := newSession(t, s, mam.Config{})
	query := func(fields string) results {
		t.Helper()
		out := sess.send(iq("set", "", `<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>`+fields+`</x></query>`))
		return queryResults(t, out, "")
	}
	all := query("")
	if strings.Join(all.ids, ",") != strings.Join(ids, ",") {
		t.Fatalf("ids = %v, want %v", all.ids, ids)
	}
	wantStamps := []string{
		"2026-01-02T03:04:06.000000Z", "2026-01-02T03:04:06.000000Z", "2026-01-02T03:04:06.000001Z",
		"2026-01-02T03:04:06.000001Z", "2026-01-02T03:04:06.000002Z",
	}
	if strings.Join(all.stamps, ",") != strings.Join(wantStamps, ",") {
		t.Fatalf("stamps = %v, want %v", all.stamps, wantStamps)
	}
	// Each message's own stamp as start and end selects it and the others
	// of the same microsecond, nothing else.
	for i, st := range all.stamps {
		var want []string
		for j := range ids {
			if all.stamps[j] == st {
				want = append(want, ids[j])
			}
		}
		got := query(field("start", st) + field("end", st))
		if strings.Join(got.ids, ",") != strings.Join(want, ",") {
			t.Errorf("message %d: start=end=%s: got %v, want %v", i, st, got.ids, want)
		}
	}
	// Paging forwards: everything up to a stamp, then everything after it
	// (start = that stamp plus one microsecond), covers the archive once.
	for i, st := range all.stamps {
		ts, err := mam.ParseTime(st)
		if err != nil {
			t.Fatal(err)
		}
		before := query(field("end", st)).ids
		after := query(field("start", mam.FormatTime(ts.Add(time.Microsecond)))).ids
		if got := append(append([]string{}, before...), after...); strings.Join(got, ",") != strings.Join(ids, ",") {
			t.Errorf("split at message %d (%s): %v + %v, want %v", i, st, before, after, ids)
		}
	}
	// A finer end is taken as given.
	if got := query(field("end", "2026-01-02T03:04:06.0000006Z")).ids; strings.Join(got, ",") != ids[0] {
		t.Errorf("nanosecond end: got %v, want [%s]", got, ids[0])
	}
}
