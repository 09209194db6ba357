package upload_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/form"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"chatbx.eu/privacy/internal/xmpptest"
	"chatbx.eu/privacy/upload"
)

var (
	_ mux.IQHandler     = (*upload.Service)(nil)
	_ info.FeatureIter  = (*upload.Service)(nil)
	_ info.IdentityIter = (*upload.Service)(nil)
	_ form.Iter         = (*upload.Service)(nil)
)

// serveIQ passes one IQ (XML text) through a mux with upload.Handle and
// returns the answer and the handler's error.
func serveIQ(t *testing.T, svc *upload.Service, iq string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	herr := xmpptest.Handle(t, mux.New(stanza.NSClient, upload.Handle(svc)), iq, &out)
	return out.String(), herr
}

// answer is the parsed IQ answer.
type answer struct {
	XMLName xml.Name
	Type    string `xml:"type,attr"`
	ID      string `xml:"id,attr"`
	To      string `xml:"to,attr"`
	Slot    *struct {
		Put struct {
			URL     string `xml:"url,attr"`
			Headers []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:",chardata"`
			} `xml:"header"`
		} `xml:"put"`
		Get struct {
			URL string `xml:"url,attr"`
		} `xml:"get"`
	} `xml:"urn:xmpp:http:upload:0 slot"`
	Error *struct {
		Type string `xml:"type,attr"`
		Any  []struct {
			XMLName xml.Name
			Stamp   string `xml:"stamp,attr"`
			Max     string `xml:"urn:xmpp:http:upload:0 max-file-size"`
		} `xml:",any"`
	} `xml:"error"`
}

func (a answer) condition() (cond string, extra []string) {
	if a.Error == nil {
		return "", nil
	}
	for _, el := range a.Error.Any {
		switch el.XMLName.Space {
		case stanza.NSError:
			cond = el.XMLName.Local
		case upload.NS:
			extra = append(extra, el.XMLName.Local+"="+el.Max+el.Stamp)
		}
	}
	return cond, extra
}

func iqXML(from, attrs string) string {
	return `<iq xmlns="jabber:client" type="get" id="q1" from="` + from +
		`" to="upload.example.org"><request xmlns="urn:xmpp:http:upload:0" ` + attrs + `/></iq>`
}

func TestHandleIQ(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.MaxFileSize = 1000; c.DailyQuota = 1500; c.StoredQuota = -1 })
	// Use up most of the quota.
	e.slot(t, alice, "big", 1000, "")
	for _, tc := range []struct {
		name, from, attrs  string
		typ, cond, errType string
		extra              string
	}{
		{"slot", "bob@example.org/x", `filename="a b.jpg" size="10" content-type="image/jpeg"`, "result", "", "", ""},
		{"too large", "bob@example.org/x", `filename="a.jpg" size="1001"`, "error", "not-acceptable", "modify", "file-too-large=1000"},
		{"quota", "alice@example.org/phone", `filename="a.jpg" size="600"`, "error", "resource-constraint", "wait", "retry="},
		{"forbidden: no user", "example.org", `filename="a.jpg" size="1"`, "error", "forbidden", "auth", ""},
		{"forbidden: no from", "", `filename="a.jpg" size="1"`, "error", "forbidden", "auth", ""},
		{"missing filename", "bob@example.org/x", `size="1"`, "error", "bad-request", "modify", ""},
		{"empty filename", "bob@example.org/x", `filename="" size="1"`, "error", "bad-request", "modify", ""},
		{"missing size", "bob@example.org/x", `filename="a"`, "error", "bad-request", "modify", ""},
		{"size not a number", "bob@example.org/x", `filename="a" size="ten"`, "error", "bad-request", "modify", ""},
		{"negative size", "bob@example.org/x", `filename="a" size="-5"`, "error", "bad-request", "modify", ""},
		{"huge size", "bob@example.org/x", `filename="a" size="99999999999999999999999"`, "error", "bad-request", "modify", ""},
		{"bad content type", "bob@example.org/x", `filename="a" size="1" content-type="&lt;script&gt;"`, "error", "bad-request", "modify", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := iqXML(tc.from, tc.attrs)
			if tc.from == "" {
				raw = strings.Replace(raw, ` from=""`, "", 1)
			}
			out, err := serveIQ(t, e.svc, raw)
			if err != nil {
				t.Fatalf("handler returned %v: would end the session", err)
			}
			var a answer
			if err := xml.Unmarshal([]byte(out), &a); err != nil {
				t.Fatalf("answer %q: %v", out, err)
			}
			if a.Type != tc.typ || a.ID != "q1" {
				t.Fatalf("answer type %q id %q, want %q: %s", a.Type, a.ID, tc.typ, out)
			}
			if tc.typ == "result" {
				if a.Slot == nil || a.Slot.Put.URL == "" || a.Slot.Get.URL == "" {
					t.Fatalf("no slot in %s", out)
				}
				if !strings.HasPrefix(a.Slot.Put.URL, "https://") || !strings.HasSuffix(a.Slot.Get.URL, "/a%20b.jpg") {
					t.Fatalf("slot URLs %q %q", a.Slot.Put.URL, a.Slot.Get.URL)
				}
				if len(a.Slot.Put.Headers) != 1 || a.Slot.Put.Headers[0].Name != "Authorization" ||
					!strings.HasPrefix(a.Slot.Put.Headers[0].Value, "Bearer ") {
					t.Fatalf("slot headers %+v", a.Slot.Put.Headers)
				}
				if a.To != tc.from {
					t.Fatalf("answer to %q, want %q", a.To, tc.from)
				}
				return
			}
			cond, extra := a.condition()
			if cond != tc.cond || a.Error.Type != tc.errType {
				t.Fatalf("error %s/%s, want %s/%s: %s", a.Error.Type, cond, tc.errType, tc.cond, out)
			}
			if tc.extra != "" && (len(extra) != 1 || !strings.HasPrefix(extra[0], tc.extra)) {
				t.Fatalf("application condition %v, want %s…: %s", extra, tc.extra, out)
			}
			if tc.cond == "resource-constraint" && len(extra[0]) <= len("retry=") {
				t.Fatalf("retry without stamp: %s", out)
			}
		})
	}
}

func TestDiscoInfo(t *testing.T) {
	e := newEnv(t, func(c *upload.Config) { c.MaxFileSize = 5242880 })
	out, err := serveIQ(t, e.svc, `<iq xmlns="jabber:client" type="get" id="d1" from="alice@example.org/phone" to="upload.example.org"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Type  string `xml:"type,attr"`
		Query struct {
			Identity []struct {
				Category string `xml:"category,attr"`
				Type     string `xml:"type,attr"`
			} `xml:"identity"`
			Feature []struct {
				Var string `xml:"var,attr"`
			} `xml:"feature"`
			X []struct {
				Type  string `xml:"type,attr"`
				Field []struct {
					Var   string `xml:"var,attr"`
					Value string `xml:"value"`
				} `xml:"field"`
			} `xml:"jabber:x:data x"`
		} `xml:"http://jabber.org/protocol/disco#info query"`
	}
	if err := xml.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if a.Type != "result" || len(a.Query.Identity) != 1 || a.Query.Identity[0].Category != "store" || a.Query.Identity[0].Type != "file" {
		t.Fatalf("identity: %s", out)
	}
	var hasNS bool
	for _, f := range a.Query.Feature {
		hasNS = hasNS || f.Var == upload.NS
	}
	if !hasNS {
		t.Fatalf("feature %s missing: %s", upload.NS, out)
	}
	if len(a.Query.X) != 1 || a.Query.X[0].Type != "result" {
		t.Fatalf("extended form: %s", out)
	}
	fields := map[string]string{}
	for _, f := range a.Query.X[0].Field {
		fields[f.Var] = f.Value
	}
	if fields["FORM_TYPE"] != upload.NS || fields["max-file-size"] != "5242880" {
		t.Fatalf("form fields %v", fields)
	}
	// A node we do not have.
	out, _ = serveIQ(t, e.svc, `<iq xmlns="jabber:client" type="get" id="d2" from="alice@example.org/phone" to="upload.example.org"><query xmlns="http://jabber.org/protocol/disco#info" node="x"/></iq>`)
	if !strings.Contains(out, "item-not-found") {
		t.Fatalf("unknown node: %s", out)
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		xml  string
		ok   bool
		want upload.Request
	}{
		{`<request xmlns="urn:xmpp:http:upload:0" filename="a.jpg" size="23456" content-type="image/jpeg"/>`, true, upload.Request{"a.jpg", 23456, "image/jpeg"}},
		{`<request xmlns="urn:xmpp:http:upload:0" filename="a.jpg" size=" 7 "/>`, true, upload.Request{"a.jpg", 7, ""}},
		{`<request xmlns="urn:xmpp:http:upload:0" filename="a.jpg" size="0"/>`, true, upload.Request{"a.jpg", 0, ""}},
		{`<request xmlns="urn:xmpp:http:upload:0" size="1"/>`, false, upload.Request{}},
		{`<request xmlns="urn:xmpp:http:upload:0" filename="a"/>`, false, upload.Request{}},
		{`<request xmlns="urn:xmpp:http:upload:0" filename="a" size="1e3"/>`, false, upload.Request{}},
		{`<request xmlns="urn:xmpp:http:upload:0" filename="a" size="-1"/>`, false, upload.Request{}},
		{`<request xmlns="urn:xmpp:http:upload" filename="a" size="1"/>`, false, upload.Request{}},
		{`<request xmlns="urn:xmpp:http:upload:0" xmlns:o="urn:other" o:filename="a" size="1"/>`, false, upload.Request{}},
	} {
		start, err := firstStart(tc.xml)
		if err != nil {
			t.Fatal(err)
		}
		got, err := upload.ParseRequest(start)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRequest(%s) = %+v, %v", tc.xml, got, err)
		}
	}
}

func firstStart(s string) (xml.StartElement, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, err
		}
		if st, ok := tok.(xml.StartElement); ok {
			return st, nil
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(`<request xmlns="urn:xmpp:http:upload:0" filename="a.jpg" size="23456" content-type="image/jpeg"/>`)
	f.Add(`<request xmlns="urn:xmpp:http:upload:0" filename="" size="-1"/>`)
	f.Add(`<request xmlns="urn:xmpp:http:upload:0" filename="../../x" size="99999999999999999999"/>`)
	e := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, s string) {
		start, err := firstStart(s)
		if err != nil {
			return
		}
		req, err := upload.ParseRequest(start)
		if err != nil {
			return
		}
		if req.Size < 0 || strings.TrimSpace(req.Filename) == "" {
			t.Fatalf("accepted %+v", req)
		}
		// Whatever parses must be answered without panic, and a granted
		// slot's URL is sanitized.
		slot, err := e.svc.RequestSlot(t.Context(), alice, req.Filename, req.Size, req.ContentType)
		if err == nil {
			name := pathOf(t, slot.GetURL)[len("/upload/"+slot.ID+"/"):]
			if strings.ContainsAny(name, "/\\\x00") || strings.Contains(name, "..") {
				t.Fatalf("unsafe name %q", name)
			}
		}
	})
}

// TestSlotXMLHeaders: only the header names XEP-0363 allows are written.
func TestSlotXMLHeaders(t *testing.T) {
	s := upload.Slot{PutURL: "https://upload.example.org/p", GetURL: "https://upload.example.org/g", Header: map[string][]string{
		"Authorization": {"Bearer t"}, "Cookie": {"c=1"}, "Expires": {"never"}, "X-Evil": {"1"}, "Host": {"198.51.100.7"},
	}}
	var buf bytes.Buffer
	e := xml.NewEncoder(&buf)
	if _, err := xmlstream.Copy(e, upload.SlotXML(s)); err != nil {
		t.Fatal(err)
	}
	e.Flush()
	out := buf.String()
	for _, want := range []string{`name="Authorization"`, `name="Cookie"`, `name="Expires"`, `url="https://upload.example.org/p"`, `url="https://upload.example.org/g"`} {
		if !strings.Contains(out, want) {
			t.Errorf("slot lacks %s: %s", want, out)
		}
	}
	if strings.Contains(out, "X-Evil") || strings.Contains(out, "Host") {
		t.Fatalf("slot carries a header XEP-0363 forbids: %s", out)
	}
}

// TestHandleRequestsWithMelliumDisco: HandleRequests sits next to mellium's
// disco.Handle, which then advertises the service through the iterators.
func TestHandleRequestsWithMelliumDisco(t *testing.T) {
	e := newEnv(t, nil)
	m := mux.New(stanza.NSClient, upload.HandleRequests(e.svc), disco.Handle())
	var out bytes.Buffer
	if err := xmpptest.Handle(t, m, `<iq xmlns="jabber:client" type="get" id="d1" from="alice@example.org/phone" to="upload.example.org"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`category="store"`, `type="file"`, `var="urn:xmpp:http:upload:0"`, `max-file-size`} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("disco answer lacks %s: %s", want, out.String())
		}
	}
}
