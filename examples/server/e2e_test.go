package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// Names of the namespaces the tests look for.
var (
	nameResult   = xml.Name{Space: mam.NS, Local: "result"}
	nameStanzaID = xml.Name{Space: stanza.NSSid, Local: "stanza-id"}
)

// stanzaIDBy returns the id of the stanza-id stamped by the archive by.
func stanzaIDBy(e element, by string) string {
	for _, c := range e.children() {
		if c.start.Name == nameStanzaID && c.attr("by") == by {
			return c.attr("id")
		}
	}
	return ""
}

var queryCounter int

// mamQuery runs a MAM query (to "" = own archive) and returns the bodies of
// the forwarded messages and the IQ answer.
func mamQuery(t *testing.T, c *testClient, to, form string) ([]string, element) {
	t.Helper()
	queryCounter++
	qid := fmt.Sprintf("q%d", queryCounter)
	toAttr := ""
	if to != "" {
		toAttr = fmt.Sprintf(` to="%s"`, to)
	}
	resp := c.IQ(t, fmt.Sprintf(`<iq type="set" id="%s"%s><query xmlns="urn:xmpp:mam:2" queryid="%s">%s</query></iq>`, qid, toAttr, qid, form))
	if resp.attr("type") != "result" {
		return nil, resp
	}
	var bodies []string
	for {
		m, err := c.next(func(e element) bool {
			r, ok := e.child(nameResult)
			return ok && r.attr("queryid") == qid
		}, 0)
		if err != nil {
			break // every result arrives before the IQ answer
		}
		r, _ := m.child(nameResult)
		fwd, _ := r.child(xml.Name{Space: "urn:xmpp:forward:0", Local: "forwarded"})
		msg, _ := fwd.child(xml.Name{Space: stanza.NSClient, Local: "message"})
		bodies = append(bodies, body(msg))
	}
	return bodies, resp
}

func setPrefs(t *testing.T, c *testClient, def string) {
	t.Helper()
	resp := c.IQ(t, fmt.Sprintf(`<iq type="set" id="prefs"><prefs xmlns="urn:xmpp:mam:2" default="%s"><always/><never/></prefs></iq>`, def))
	if resp.attr("type") != "result" {
		t.Fatalf("set prefs %s: %s", def, stanzaErrorCondition(resp))
	}
}

func chat(t *testing.T, from, to *testClient, text string) element {
	t.Helper()
	from.Send(t, fmt.Sprintf(`<message to="%s" type="chat"><body>%s</body></message>`, to.JID.Bare(), text))
	m := to.Next(t, isMessage)
	if body(m) != text {
		t.Fatalf("got %q, want %q", body(m), text)
	}
	return m
}

// TestArchiveOptIn: nothing is archived before a user opts in; after, only
// what each user's own preferences allow; stanza-ids cannot be forged.
func TestArchiveOptIn(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password 1")

	// disco on the own bare JID advertises the archive.
	info := a.IQ(t, `<iq type="get" id="d1" to="alice@localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if raw, _ := info.bytes(); !bytes.Contains(raw, []byte(`var="urn:xmpp:mam:2"`)) || !bytes.Contains(raw, []byte(`var="urn:xmpp:mam:2#extended"`)) {
		t.Errorf("account disco lacks mam: %s", raw)
	}

	m := chat(t, a, b, "before opt-in")
	if id := stanzaIDBy(m, "bob@localhost"); id != "" {
		t.Errorf("stamped before opt-in: %s", id)
	}
	for _, c := range []*testClient{a, b} {
		if got, resp := mamQuery(t, c, "", ""); len(got) != 0 || resp.attr("type") != "result" {
			t.Errorf("%s archive before opt-in: %q (%s)", c.JID, got, stanzaErrorCondition(resp))
		}
	}

	setPrefs(t, a, "always")
	setPrefs(t, b, "roster")
	chat(t, a, b, "after alice opted in")
	if got, _ := mamQuery(t, a, "", ""); strings.Join(got, "|") != "after alice opted in" {
		t.Errorf("alice's archive: %q", got)
	}
	if got, _ := mamQuery(t, b, "", ""); len(got) != 0 {
		t.Errorf("bob (roster default, alice not in roster) archived %q", got)
	}

	resp := b.IQ(t, `<iq type="set" id="r1"><query xmlns="jabber:iq:roster"><item jid="alice@localhost" name="Alice"/></query></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("roster set: %s", stanzaErrorCondition(resp))
	}
	a.Send(t, `<message to="bob@localhost" type="chat"><stanza-id xmlns="urn:xmpp:sid:0" by="bob@localhost" id="FORGED"/><body>in roster</body></message>`)
	m = b.Next(t, func(e element) bool { return isMessage(e) && body(e) == "in roster" })
	id := stanzaIDBy(m, "bob@localhost")
	if id == "" || id == "FORGED" {
		t.Errorf("stanza-id by bob: %q", id)
	}
	if raw, _ := m.bytes(); bytes.Contains(raw, []byte("FORGED")) {
		t.Errorf("forged stanza-id delivered: %s", raw)
	}
	if got, _ := mamQuery(t, b, "", ""); strings.Join(got, "|") != "in roster" {
		t.Errorf("bob's archive: %q", got)
	}
	// Filter by peer, and nobody reads another user's archive.
	if got, _ := mamQuery(t, a, "", `<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field><field var="with"><value>bob@localhost</value></field></x>`); len(got) != 2 {
		t.Errorf("alice with bob: %q", got)
	}
	if _, resp := mamQuery(t, a, "bob@localhost", ""); stanzaErrorCondition(resp) != "forbidden" {
		t.Errorf("alice reading bob's archive: %s %s", resp.attr("type"), stanzaErrorCondition(resp))
	}
}

// joinRoom sends a join presence and waits for the self-presence (110).
// A room it creates (201) it unlocks as an instant room, as clients do
// (XEP-0045 § 10.1.2); joinLocked leaves it locked.
func joinRoom(t *testing.T, c *testClient, occupant string) element {
	t.Helper()
	self := joinLocked(t, c, occupant)
	if raw, _ := self.bytes(); bytes.Contains(raw, []byte(`code="201"`)) {
		room := jid.MustParse(occupant).Bare().String()
		if r := c.IQ(t, `<iq type="set" id="instant" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`); r.attr("type") != "result" {
			t.Fatalf("instant room %s: %s", room, stanzaErrorCondition(r))
		}
	}
	return self
}

// joinLocked sends a join presence and waits for the self-presence (110).
func joinLocked(t *testing.T, c *testClient, occupant string) element {
	t.Helper()
	c.Send(t, fmt.Sprintf(`<presence to="%s"><x xmlns="http://jabber.org/protocol/muc"/></presence>`, occupant))
	return c.Next(t, func(e element) bool {
		raw, _ := e.bytes()
		return e.start.Name.Local == "presence" && e.attr("from") == occupant && bytes.Contains(raw, []byte(`code="110"`))
	})
}

func isGroupchat(text string) func(element) bool {
	return func(e element) bool { return e.attr("type") == "groupchat" && body(e) == text }
}

// TestGroupChat: rooms archive only after the owner enables archiving in the
// room configuration; whoever may join reads the room archive.
func TestGroupChat(t *testing.T) {
	ts := startTestServer(t)
	for _, u := range []string{"alice", "bob", "carol"} {
		ts.Register(t, u, u+" password")
	}
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password")
	c := ts.Login(t, "carol", "carol password")
	const room = "lounge@conference.localhost"

	self := joinRoom(t, a, room+"/Al")
	if raw, _ := self.bytes(); !bytes.Contains(raw, []byte(`code="201"`)) || !bytes.Contains(raw, []byte(`affiliation="owner"`)) {
		t.Errorf("creator's presence: %s", raw)
	}
	joinRoom(t, b, room+"/Bobby")
	a.Next(t, func(e element) bool { return e.start.Name.Local == "presence" && e.attr("from") == room+"/Bobby" })
	// Nick conflict.
	c.Send(t, `<presence to="lounge@conference.localhost/Bobby"/>`)
	if e := c.Next(t, func(e element) bool { return e.attr("type") == "error" }); stanzaErrorCondition(e) != "conflict" {
		t.Errorf("nick conflict: %s", stanzaErrorCondition(e))
	}
	// Not an occupant: cannot speak.
	c.Send(t, `<message to="lounge@conference.localhost" type="groupchat"><body>intrude</body></message>`)
	if e := c.Next(t, func(e element) bool { return e.attr("type") == "error" }); stanzaErrorCondition(e) != "not-acceptable" {
		t.Errorf("non-occupant groupchat: %s", stanzaErrorCondition(e))
	}

	hasMAM := func() bool {
		info := b.IQ(t, `<iq type="get" id="di" to="lounge@conference.localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
		raw, _ := info.bytes()
		return bytes.Contains(raw, []byte(`var="urn:xmpp:mam:2"`))
	}
	if hasMAM() {
		t.Error("new room advertises mam")
	}
	b.Send(t, `<message to="lounge@conference.localhost" type="groupchat"><body>not archived</body></message>`)
	for _, cl := range []*testClient{a, b} {
		m := cl.Next(t, isGroupchat("not archived"))
		if m.attr("from") != room+"/Bobby" || stanzaIDBy(m, room) != "" {
			t.Errorf("%s got from %q, stanza-id %q", cl.JID, m.attr("from"), stanzaIDBy(m, room))
		}
	}

	// Owner configuration: only the owner; archiving off by default.
	if resp := b.IQ(t, `<iq type="get" id="c0" to="lounge@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#owner"/></iq>`); stanzaErrorCondition(resp) != "forbidden" {
		t.Errorf("non-owner config: %s", stanzaErrorCondition(resp))
	}
	form := a.IQ(t, `<iq type="get" id="c1" to="lounge@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#owner"/></iq>`)
	if raw, _ := form.bytes(); !bytes.Contains(raw, []byte(`var="muc#roomconfig_enablearchiving"`)) || !bytes.Contains(raw, []byte(">0</value>")) {
		t.Errorf("config form: %s", raw)
	}
	resp := a.IQ(t, `<iq type="set" id="c2" to="lounge@conference.localhost"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var="muc#roomconfig_enablearchiving"><value>1</value></field></x></query></iq>`)
	if resp.attr("type") != "result" {
		t.Fatalf("config submit: %s", stanzaErrorCondition(resp))
	}
	if !hasMAM() {
		t.Error("archiving room does not advertise mam")
	}
	b.Send(t, `<message to="lounge@conference.localhost" type="groupchat"><body>archived</body></message>`)
	for _, cl := range []*testClient{a, b} {
		if m := cl.Next(t, isGroupchat("archived")); stanzaIDBy(m, room) == "" {
			t.Errorf("%s: archived message without stanza-id", cl.JID)
		}
	}
	if got, resp := mamQuery(t, b, room, ""); strings.Join(got, "|") != "archived" {
		t.Errorf("room archive: %q (%s)", got, stanzaErrorCondition(resp))
	}
	// carol may join (an open room), so she reads it before joining
	// (TestRoomArchiveBeforeJoin).
	if got, resp := mamQuery(t, c, room, ""); strings.Join(got, "|") != "archived" {
		t.Errorf("non-occupant reading the open room's archive: %q (%s)", got, stanzaErrorCondition(resp))
	}
	// A user's own archive does not get room messages (prefs never).
	if got, _ := mamQuery(t, b, "", ""); len(got) != 0 {
		t.Errorf("bob's archive holds %q", got)
	}

	// Nick change and leave.
	b.Send(t, `<presence to="lounge@conference.localhost/Robert"/>`)
	a.Next(t, func(e element) bool {
		raw, _ := e.bytes()
		return e.attr("from") == room+"/Bobby" && e.attr("type") == "unavailable" && bytes.Contains(raw, []byte(`code="303"`))
	})
	a.Next(t, func(e element) bool { return e.start.Name.Local == "presence" && e.attr("from") == room+"/Robert" })
	b.Send(t, `<presence to="lounge@conference.localhost/Robert" type="unavailable"/>`)
	a.Next(t, func(e element) bool { return e.attr("from") == room+"/Robert" && e.attr("type") == "unavailable" })
	b.Send(t, `<message to="lounge@conference.localhost" type="groupchat"><body>after leaving</body></message>`)
	if e := b.Next(t, func(e element) bool { return e.attr("type") == "error" }); stanzaErrorCondition(e) != "not-acceptable" {
		t.Errorf("groupchat after leaving: %s", stanzaErrorCondition(e))
	}
}

// requestSlot asks upload.localhost for a slot and returns the PUT URL, its
// headers and the GET URL.
func requestSlot(t *testing.T, c *testClient, name string, size int) (put string, hdr http.Header, get string, resp element) {
	t.Helper()
	resp = c.IQ(t, fmt.Sprintf(`<iq type="get" id="slot" to="upload.localhost"><request xmlns="urn:xmpp:http:upload:0" filename="%s" size="%d" content-type="text/plain"/></iq>`, name, size))
	slot, ok := resp.child(xml.Name{Space: "urn:xmpp:http:upload:0", Local: "slot"})
	if !ok {
		return "", nil, "", resp
	}
	p, _ := slot.child(xml.Name{Space: "urn:xmpp:http:upload:0", Local: "put"})
	g, _ := slot.child(xml.Name{Space: "urn:xmpp:http:upload:0", Local: "get"})
	hdr = http.Header{}
	for _, h := range p.children() {
		hdr.Set(h.attr("name"), h.text())
	}
	return p.attr("url"), hdr, g.attr("url"), resp
}

// upload puts content through a fresh slot and returns the GET URL.
func uploadFile(t *testing.T, ts *testServer, c *testClient, name, content string) string {
	t.Helper()
	put, hdr, get, resp := requestSlot(t, c, name, len(content))
	if put == "" {
		t.Fatalf("slot request: %s", stanzaErrorCondition(resp))
	}
	req, _ := http.NewRequest(http.MethodPut, put, strings.NewReader(content))
	req.Header = hdr
	req.Header.Set("Content-Type", "text/plain")
	res, err := ts.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", res.Status)
	}
	return get
}

// TestUpload: the service is found by disco, slots come over XMPP and the
// file goes up and down over HTTPS (verified certificate).
func TestUpload(t *testing.T) {
	ts := startTestServer(t, withConfig(func(c *Config) { c.UploadMax = 1000 }))
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")

	items := a.IQ(t, `<iq type="get" id="i" to="localhost"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	if raw, _ := items.bytes(); !bytes.Contains(raw, []byte(`jid="upload.localhost"`)) || !bytes.Contains(raw, []byte(`jid="conference.localhost"`)) {
		t.Errorf("server items: %s", raw)
	}
	info := a.IQ(t, `<iq type="get" id="u" to="upload.localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if raw, _ := info.bytes(); !bytes.Contains(raw, []byte(`urn:xmpp:http:upload:0`)) || !bytes.Contains(raw, []byte("1000")) {
		t.Errorf("upload disco: %s", raw)
	}
	// The server's own disco is the server's (it also advertises the
	// archive: TestDiscoMAMServerAndAccount).
	srvInfo := a.IQ(t, `<iq type="get" id="s" to="localhost"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if raw, _ := srvInfo.bytes(); !bytes.Contains(raw, []byte(`category="server"`)) {
		t.Errorf("server disco: %s", raw)
	}

	const content = "hello upload, a text file"
	get := uploadFile(t, ts, a, "note.txt", content)
	if !strings.HasPrefix(get, ts.HTTPSURL+"/upload/") || strings.Contains(get, "alice") {
		t.Errorf("GET URL %q", get)
	}
	res, err := ts.HTTPClient.Get(get)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(got) != content {
		t.Errorf("GET: %s %q", res.Status, got)
	}
	if _, _, _, resp := requestSlot(t, a, "big.bin", 1001); stanzaErrorCondition(resp) != "not-acceptable" {
		t.Errorf("too large: %s", stanzaErrorCondition(resp))
	}
}

// exportZip downloads the user's export from /account/export.
func exportZip(t *testing.T, ts *testServer, user, password string) map[string]string {
	t.Helper()
	form := url.Values{"username": {user}, "password": {password}}
	req, _ := http.NewRequest(http.MethodPost, ts.HTTPSURL+"/account/export", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ts.HTTPSURL)
	res, err := ts.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("export: %s %s", res.Status, b)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("export is not a zip: %v", err)
	}
	files := make(map[string]string)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = string(c)
	}
	return files
}

// TestExport: the export holds the user's archive, uploads, roster (with
// subscription states), pending subscription requests, blocklist and spam
// report count.
func TestExport(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	ts.Register(t, "bob", "bob password 1")
	a := ts.Login(t, "alice", "alice password")
	b := ts.Login(t, "bob", "bob password 1")
	setPrefs(t, a, "always")
	chat(t, a, b, "archived for export")
	a.IQ(t, `<iq type="set" id="r"><query xmlns="jabber:iq:roster"><item jid="bob@localhost" name="Bobby"/></query></iq>`)
	uploadFile(t, ts, a, "export.txt", "uploaded for export")
	a.Send(t, `<presence to="bob@localhost" type="subscribe"/>`)
	a.IQ(t, `<iq type="set" id="blk"><block xmlns="urn:xmpp:blocking"><item jid="spam@example.org"><report xmlns="urn:xmpp:reporting:1" reason="urn:xmpp:reporting:spam"/></item></block></iq>`)

	files := exportZip(t, ts, "alice", "alice password")
	all := ""
	for name, c := range files {
		all += name + "\n" + c + "\n"
	}
	for _, want := range []string{"archived for export", "uploaded for export", `name="Bobby" subscription="none" ask="subscribe"`, "account.json",
		`<pending-out jid="bob@localhost">`, `<item jid="spam@example.org">`, "<spam-reports-sent>1</spam-reports-sent>"} {
		if !strings.Contains(all, want) {
			t.Errorf("export lacks %q; files: %v", want, keys(files))
		}
	}
	if strings.Contains(all, "argon2id") {
		t.Error("export holds the password hash")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWebDeleteEndsSessions: deleting the account on /account ends its
// XMPP sessions like <remove/> does, and the name cannot log in again.
func TestWebDeleteEndsSessions(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	a := ts.Login(t, "alice", "alice password")
	form := url.Values{"username": {"alice"}, "password": {"alice password"}, "confirm": {"alice"}}
	if status, page := postAccount(t, ts, "/account/delete", form); status != http.StatusOK {
		t.Fatalf("delete: %d\n%s", status, page)
	}
	var se stream.Error
	if err := a.WaitEnd(t); !errors.As(err, &se) || se.Err != "not-authorized" {
		t.Errorf("session ended with %v, want not-authorized", err)
	}
	if c, err := ts.login("alice", "alice password", false); err == nil {
		c.Close()
		t.Error("login after deletion on /account")
	}
}

// postAccount posts form to an /account action and returns the status and
// page.
func postAccount(t *testing.T, ts *testServer, action string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ts.HTTPSURL+action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", ts.HTTPSURL)
	res, err := ts.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	page, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(page)
}

// TestWebBlockedAccount: a blocked account (GDPR restriction) is told so on
// /account after the right password, and only then: a wrong password reads
// like any wrong password. No XMPP login either.
func TestWebBlockedAccount(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	if err := ts.manager.Block(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	status, page := postAccount(t, ts, "/account/export", url.Values{"username": {"alice"}, "password": {"alice password"}})
	if status != http.StatusForbidden || !strings.Contains(page, "This account is blocked") {
		t.Errorf("right password: %d, page without the blocked notice:\n%s", status, page)
	}
	status, page = postAccount(t, ts, "/account/export", url.Values{"username": {"alice"}, "password": {"wrong password"}})
	if status != http.StatusForbidden || strings.Contains(page, "blocked") || !strings.Contains(page, "Wrong username or password") {
		t.Errorf("wrong password: %d, page:\n%s", status, page)
	}
	if c, err := ts.login("alice", "alice password", false); err == nil {
		c.Close()
		t.Error("XMPP login of a blocked account")
	}
}

// TestWebAccountErrors: the /account pages answer account.Manager's own
// errors: a refused new password (account.ErrPolicy) with the rules, a
// wrong password (account.ErrAuth) as such, too many of them
// (account.ErrRateLimited) with 429.
func TestWebAccountErrors(t *testing.T) {
	ts := startTestServer(t)
	ts.Register(t, "alice", "alice password")
	status, page := postAccount(t, ts, "/account/password", url.Values{"username": {"alice"}, "password": {"alice password"},
		"new": {"password"}, "new2": {"password"}})
	if status != http.StatusBadRequest || !strings.Contains(page, "does not meet this server&#39;s rules") {
		t.Errorf("weak new password: %d, page:\n%s", status, page)
	}
	ts.Login(t, "alice", "alice password").Close() // unchanged
	limited := false
	for i := range 15 {
		status, page = postAccount(t, ts, "/account/export", url.Values{"username": {"alice"}, "password": {"wrong password"}})
		if status == http.StatusTooManyRequests {
			limited = true
			break
		}
		if status != http.StatusForbidden || !strings.Contains(page, "Wrong username or password") {
			t.Fatalf("wrong password %d: %d, page:\n%s", i, status, page)
		}
	}
	if !limited {
		t.Error("15 wrong passwords, never 429")
	}
}

// TestPrivacyPageJobsWithoutMaxAge: jobs that act on all they find (erasure
// retries, page purges) read "until the next run", never "until you delete
// it", which would promise the user a control they do not have.
func TestPrivacyPageJobsWithoutMaxAge(t *testing.T) {
	ts := startTestServer(t)
	res, err := ts.HTTPClient.Get(ts.HTTPSURL + "/privacy")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if !strings.Contains(page, "data of deleted accounts whose erasure was interrupted") {
		t.Fatalf("erasure-retry job missing from /privacy:\n%s", page)
	}
	if !strings.Contains(page, "until the next run (every 1 hour)") {
		t.Errorf("no \"until the next run\" lifetime on /privacy:\n%s", page)
	}
	if n := strings.Count(page, "until you delete it"); n != 3 {
		t.Errorf("%d rows \"until you delete it\", want 3 (archive, account, blocklist):\n%s", n, page)
	}
}
