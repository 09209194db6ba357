package account_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/internal/xmpptest"
	"golang.org/x/time/rate"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

var (
	_ mux.IQHandler    = (*account.Handler)(nil)
	_ info.FeatureIter = (*account.Handler)(nil)
)

// reply is an IQ answer as a client sees it.
type reply struct {
	Type  string `xml:"type,attr"`
	ID    string `xml:"id,attr"`
	Query *struct {
		Instructions string    `xml:"instructions"`
		Registered   *struct{} `xml:"registered"`
		Username     *string   `xml:"username"`
		Password     *string   `xml:"password"`
		Form         *struct {
			Type   string `xml:"type,attr"`
			Fields []struct {
				Var      string    `xml:"var,attr"`
				Type     string    `xml:"type,attr"`
				Required *struct{} `xml:"required"`
				Values   []string  `xml:"value"`
			} `xml:"field"`
		} `xml:"jabber:x:data x"`
	} `xml:"jabber:iq:register query"`
	Error *struct {
		Type string `xml:"type,attr"`
		Any  []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	} `xml:"error"`
}

func (r reply) condition() (typ, cond, text string) {
	if r.Error == nil {
		return "", "", ""
	}
	for _, a := range r.Error.Any {
		if a.XMLName.Space != stanza.NSError {
			continue
		}
		if a.XMLName.Local == "text" {
			text = a.Text
		} else {
			cond = a.XMLName.Local
		}
	}
	return r.Error.Type, cond, text
}

// serve feeds one IQ, as XML text, through a mux holding h, and returns
// the raw answer.
func serve(t *testing.T, h *account.Handler, in string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := xmpptest.Handle(t, mux.New(stanza.NSClient, account.Handle(h)), in, &buf); err != nil {
		t.Fatalf("handler returned %v: it must answer with an IQ error instead", err)
	}
	return buf.String()
}

func parseReply(t *testing.T, out string) reply {
	t.Helper()
	var r reply
	if err := xml.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("answer %q: %v", out, err)
	}
	return r
}

func iq(typ, query string) string {
	return `<iq xmlns='jabber:client' type='` + typ + `' id='q1'><query xmlns='jabber:iq:register'>` + query + `</query></iq>`
}

func TestHandler(t *testing.T) {
	alice := jid.MustParse("alice@example.org/phone")
	pre := account.HandlerConfig{Secure: true, Open: true, ClientKey: "198.51.100.1"}
	authed := account.HandlerConfig{Secure: true, User: alice, ClientKey: "198.51.100.1"}
	for _, tc := range []struct {
		name string
		cfg  account.HandlerConfig
		in   string
		// want is "result" or "errortype/condition"; text, if set, must
		// appear in the error text.
		want, text string
		check      func(t *testing.T, e *env, r reply)
	}{
		{name: "form", cfg: pre, in: iq("get", ""), want: "result", check: func(t *testing.T, _ *env, r reply) {
			if r.Query == nil || r.Query.Username == nil || r.Query.Password == nil || r.Query.Instructions == "" || r.Query.Registered != nil {
				t.Fatalf("form = %+v", r.Query)
			}
		}},
		{name: "data form", cfg: pre, in: iq("get", ""), want: "result", check: func(t *testing.T, _ *env, r reply) {
			f := r.Query.Form
			if f == nil || f.Type != "form" {
				t.Fatalf("no data form of type form: %+v", r.Query)
			}
			got := map[string]string{}
			for _, fl := range f.Fields {
				desc := fl.Type + " " + strings.Join(fl.Values, ",")
				if fl.Required != nil {
					desc += " required"
				}
				got[fl.Var] = desc
			}
			want := map[string]string{"FORM_TYPE": "hidden jabber:iq:register", "username": "text-single  required", "password": "text-private  required"}
			if len(got) != len(want) {
				t.Fatalf("fields %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("field %s: %q, want %q", k, got[k], v)
				}
			}
		}},
		{name: "register with the data form", cfg: pre, in: iq("set", form("submit", ft+uf("Bill")+pf("Calliope1"))[len(`<query xmlns='jabber:iq:register'>`):len(form("submit", ft+uf("Bill")+pf("Calliope1")))-len(`</query>`)]), want: "result",
			check: func(t *testing.T, e *env, _ reply) {
				if err := e.m.Authenticate(ctx, "k", "bill", "Calliope1"); err != nil {
					t.Fatalf("account registered by form cannot log in: %v", err)
				}
			}},
		{name: "register with a data form, wrong FORM_TYPE", cfg: pre, in: iq("set", `<x xmlns='jabber:x:data' type='submit'>`+uf("bill")+pf("Calliope1")+`</x>`), want: "modify/bad-request"},
		{name: "register with a data form, no password", cfg: pre, in: iq("set", `<x xmlns='jabber:x:data' type='submit'>`+ft+uf("bill")+`</x>`), want: "modify/not-acceptable"},
		{name: "register with a data form, existing", cfg: pre, in: iq("set", `<x xmlns='jabber:x:data' type='submit'>`+ft+uf("alice")+pf("Calliope1")+`</x>`), want: "cancel/conflict"},
		{name: "change password with the data form", cfg: authed, in: iq("set", `<x xmlns='jabber:x:data' type='submit'>`+ft+uf("alice")+pf("new password")+`</x>`), want: "result",
			check: func(t *testing.T, e *env, _ reply) {
				if err := e.m.Authenticate(ctx, "k", "alice", "new password"); err != nil {
					t.Fatalf("new password: %v", err)
				}
			}},
		{name: "form when closed", cfg: account.HandlerConfig{Secure: true}, in: iq("get", ""), want: "cancel/not-allowed"},
		{name: "form when registered", cfg: authed, in: iq("get", ""), want: "result", check: func(t *testing.T, _ *env, r reply) {
			if r.Query == nil || r.Query.Registered == nil || r.Query.Username == nil || *r.Query.Username != "alice" {
				t.Fatalf("registered form = %+v", r.Query)
			}
		}},
		{name: "register", cfg: pre, in: iq("set", "<username>Bill</username><password>Calliope1</password>"), want: "result",
			check: func(t *testing.T, e *env, _ reply) {
				if err := e.m.Authenticate(ctx, "k", "bill", "Calliope1"); err != nil {
					t.Fatalf("registered account cannot log in: %v", err)
				}
			}},
		{name: "register ignores other fields", cfg: pre, in: iq("set", "<username>bill</username><email>b@example.org</email><password>Calliope1</password>"), want: "result"},
		{name: "register existing", cfg: pre, in: iq("set", "<username>alice</username><password>lilac-sky-2</password>"), want: "cancel/conflict"},
		{name: "register existing other case", cfg: pre, in: iq("set", "<username>ALICE</username><password>lilac-sky-2</password>"), want: "cancel/conflict"},
		{name: "register no password", cfg: pre, in: iq("set", "<username>bill</username>"), want: "modify/not-acceptable"},
		{name: "register empty password", cfg: pre, in: iq("set", "<username>bill</username><password/>"), want: "modify/not-acceptable"},
		{name: "register no username", cfg: pre, in: iq("set", "<password>Calliope1</password>"), want: "modify/not-acceptable"},
		{name: "register weak password", cfg: pre, in: iq("set", "<username>bill</username><password>short</password>"), want: "modify/not-acceptable", text: "shorter than 8"},
		{name: "register common password", cfg: pre, in: iq("set", "<username>bill</username><password>Password1</password>"), want: "modify/not-acceptable", text: "most common"},
		{name: "register blank password", cfg: pre, in: iq("set", "<username>bill</username><password>\u3000        </password>"), want: "modify/not-acceptable", text: "only white space"},
		{name: "register mixed scripts", cfg: pre, in: iq("set", "<username>bi\u0441\u0441</username><password>Calliope1</password>"), want: "modify/not-acceptable", text: "mixes scripts"},
		{name: "register look-alike", cfg: pre, in: iq("set", "<username>a1ice</username><password>Calliope1</password>"), want: "cancel/conflict", text: "username not available"},
		{name: "register bad name", cfg: pre, in: iq("set", "<username>bi ll</username><password>Calliope1</password>"), want: "modify/not-acceptable", text: "not allowed"},
		{name: "register long name", cfg: pre, in: iq("set", "<username>"+strings.Repeat("b", 65)+"</username><password>Calliope1</password>"), want: "modify/not-acceptable", text: "longer than 64"},
		{name: "register closed", cfg: account.HandlerConfig{Secure: true}, in: iq("set", "<username>bill</username><password>Calliope1</password>"), want: "cancel/not-allowed"},
		{name: "register without TLS", cfg: account.HandlerConfig{Open: true}, in: iq("set", "<username>bill</username><password>Calliope1</password>"), want: "auth/not-authorized", text: "TLS"},
		{name: "malformed query", cfg: pre, in: iq("set", "<username>a</username><username>b</username><password>Calliope1</password>"), want: "modify/bad-request"},
		{name: "remove before auth", cfg: pre, in: iq("set", "<remove/>"), want: "auth/not-authorized"},
		{name: "change password", cfg: authed, in: iq("set", "<username>alice</username><password>new password</password>"), want: "result",
			check: func(t *testing.T, e *env, _ reply) {
				if err := e.m.Authenticate(ctx, "k", "alice", "new password"); err != nil {
					t.Fatalf("new password: %v", err)
				}
			}},
		{name: "change password without TLS", cfg: account.HandlerConfig{User: alice}, in: iq("set", "<username>alice</username><password>new password</password>"), want: "cancel/not-authorized",
			check: func(t *testing.T, e *env, _ reply) {
				if err := e.m.Authenticate(ctx, "k", "alice", "lilac-sky-1"); err != nil {
					t.Fatalf("password changed without TLS: %v", err)
				}
			}},
		{name: "change other's password", cfg: authed, in: iq("set", "<username>bob</username><password>new password</password>"), want: "cancel/not-allowed",
			check: func(t *testing.T, e *env, _ reply) {
				if err := e.m.Authenticate(ctx, "k", "bob", "lilac-sky-1"); err != nil {
					t.Fatalf("bob's password changed: %v", err)
				}
			}},
		{name: "change password missing", cfg: authed, in: iq("set", "<username>alice</username>"), want: "modify/bad-request"},
		{name: "change password common", cfg: authed, in: iq("set", "<username>alice</username><password>QWERTYUIOP</password>"), want: "modify/not-acceptable", text: "most common",
			check: func(t *testing.T, e *env, _ reply) {
				if err := e.m.Authenticate(ctx, "k", "alice", "lilac-sky-1"); err != nil {
					t.Fatalf("old password no longer works: %v", err)
				}
			}},
		{name: "change password weak", cfg: authed, in: iq("set", "<username>alice</username><password>short</password>"), want: "modify/not-acceptable", text: "shorter than 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, account.Config{})
			e.seed(t, "alice", "bob")
			r := parseReply(t, serve(t, account.NewHandler(e.m, tc.cfg), tc.in))
			if r.ID != "q1" {
				t.Errorf("answer id %q, want q1", r.ID)
			}
			got := r.Type
			typ, cond, text := r.condition()
			if r.Type == "error" {
				got = typ + "/" + cond
			}
			if got != tc.want {
				t.Fatalf("answer %s (text %q), want %s", got, text, tc.want)
			}
			if !strings.Contains(text, tc.text) {
				t.Errorf("error text %q, want it to mention %q", text, tc.text)
			}
			if tc.check != nil {
				tc.check(t, e, r)
			}
			e.noSecrets(t, "alice", "bill", "lilac-sky-1", "Calliope1")
		})
	}
}

func TestHandlerRateLimit(t *testing.T) {
	e := newEnv(t, account.Config{RegisterBurst: 2, RegisterRate: rate.Limit(1e-9)})
	h := account.NewHandler(e.m, account.HandlerConfig{Secure: true, Open: true, ClientKey: "198.51.100.9"})
	for i, want := range []string{"modify/not-acceptable", "modify/not-acceptable", "wait/resource-constraint"} {
		r := parseReply(t, serve(t, h, iq("set", "<username>bill</username><password>x</password>")))
		typ, cond, text := r.condition()
		if typ+"/"+cond != want {
			t.Fatalf("attempt %d: %s/%s, want %s", i, typ, cond, want)
		}
		if i == 2 && text == "" {
			t.Fatal("resource-constraint without text")
		}
	}
}

func TestHandlerRemove(t *testing.T) {
	mam := newHolder("mam")
	e := newEnv(t, account.Config{Holders: []account.Holder{mam}})
	e.seed(t, "alice", "bob")
	mam.put("alice@example.org", "messages")
	mam.put("bob@example.org", "messages")

	kicked := make(chan jid.JID, 2)
	var out bytes.Buffer
	h := account.NewHandler(e.m, account.HandlerConfig{
		Secure: true,
		User:   jid.MustParse("alice@example.org/phone"),
		Kick: func(u jid.JID) {
			// The result must be on the wire before the sessions end.
			if !strings.Contains(out.String(), `type="result"`) {
				t.Errorf("Kick called before the result was written: %q", out.String())
			}
			kicked <- u
		},
	})
	// xmpptest.Handle flushes every token: out holds what a client
	// would have received when Kick runs.
	if err := xmpptest.Handle(t, mux.New(stanza.NSClient, account.Handle(h)), iq("set", "<remove/>"), &out); err != nil {
		t.Fatal(err)
	}
	if r := parseReply(t, out.String()); r.Type != "result" {
		t.Fatalf("answer %q", out.String())
	}
	select {
	case u := <-kicked:
		if u.String() != "alice@example.org" {
			t.Fatalf("kicked %v, want alice@example.org", u)
		}
	case <-time.After(time.Minute): // a guard against hanging, not timing
		t.Fatal("Kick not called")
	}
	if _, err := e.m.Get(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatal("account still there")
	}
	if mam.has("alice@example.org") || !mam.has("bob@example.org") {
		t.Fatal("holder not erased for alice only")
	}
	e.noSecrets(t, "alice")
}

func TestHandlerFeature(t *testing.T) {
	e := newEnv(t, account.Config{})
	var got []string
	account.NewHandler(e.m, account.HandlerConfig{}).ForFeatures("", func(f info.Feature) error {
		got = append(got, f.Var)
		return nil
	})
	if len(got) != 1 || got[0] != account.NS {
		t.Fatalf("features %v", got)
	}
}

// Pieces of XEP-0004 data forms submitted in a registration query.
const ft = `<field var='FORM_TYPE' type='hidden'><value>jabber:iq:register</value></field>`

func uf(v string) string { return `<field var='username'><value>` + v + `</value></field>` }
func pf(v string) string { return `<field var='password'><value>` + v + `</value></field>` }

// form is a registration query holding one data form of type typ.
func form(typ, fields string) string {
	return `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='` + typ + `'>` + fields + `</x></query>`
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     account.Query
		bad      bool
	}{
		{name: "empty", in: `<query xmlns='jabber:iq:register'/>`},
		{name: "fields", in: `<query xmlns='jabber:iq:register'><username>bill</username><password>Calliope</password></query>`,
			want: account.Query{Username: "bill", Password: "Calliope", HasUsername: true, HasPassword: true}},
		{name: "empty fields", in: `<query xmlns='jabber:iq:register'><username/><password/></query>`,
			want: account.Query{HasUsername: true, HasPassword: true}},
		{name: "remove", in: `<query xmlns='jabber:iq:register'><remove/></query>`, want: account.Query{Remove: true}},
		{name: "entities kept verbatim", in: `<query xmlns='jabber:iq:register'><password> a&amp;b&lt; </password></query>`,
			want: account.Query{Password: " a&b< ", HasPassword: true}},
		{name: "foreign element ignored", in: `<query xmlns='jabber:iq:register'><x xmlns='urn:example'><username>z</username></x></query>`},
		{name: "data form", in: form("submit", ft+uf("bill")+pf("Calliope")),
			want: account.Query{Username: "bill", Password: "Calliope", HasUsername: true, HasPassword: true, Form: true}},
		{name: "data form, unknown fields and children ignored", in: form("submit", `<title>t</title><field var='email'><value>b@example.org</value><value>2</value><x/></field>`+
			`<field var='username' type='text-single'><desc>d</desc><value>bill</value></field>`+ft+pf("Calliope")+`<field var='x-extra'>`+strings.Repeat("<y>", 13)+strings.Repeat("</y>", 13)+`</field>`),
			want: account.Query{Username: "bill", Password: "Calliope", HasUsername: true, HasPassword: true, Form: true}},
		{name: "data form, empty fields", in: form("submit", ft+`<field var='username'/><field var='password'><value/></field>`),
			want: account.Query{HasUsername: true, HasPassword: true, Form: true}},
		{name: "data form, no fields but FORM_TYPE", in: form("submit", ft), want: account.Query{Form: true}},
		{name: "data form, entities", in: form("submit", ft+pf(" a&amp;b ")), want: account.Query{Password: " a&b ", HasPassword: true, Form: true}},
		{name: "data form with remove", in: `<query xmlns='jabber:iq:register'><remove/>` + form("submit", ft)[len(`<query xmlns='jabber:iq:register'>`):],
			want: account.Query{Remove: true, Form: true}},
		{name: "data form, type form", in: form("form", ft+uf("bill")), bad: true},
		{name: "data form, no type", in: `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data'>` + ft + `</x></query>`, bad: true},
		{name: "data form, no FORM_TYPE", in: form("submit", uf("bill")+pf("Calliope")), bad: true},
		{name: "data form, other FORM_TYPE", in: form("submit", `<field var='FORM_TYPE'><value>urn:example</value></field>`+uf("bill")), bad: true},
		{name: "data form, duplicate FORM_TYPE", in: form("submit", ft+ft), bad: true},
		{name: "data form, duplicate username", in: form("submit", ft+uf("a")+uf("b")), bad: true},
		{name: "data form, two values", in: form("submit", ft+`<field var='password'><value>a</value><value>b</value></field>`), bad: true},
		{name: "data form and legacy username", in: `<query xmlns='jabber:iq:register'><username>a</username>` + form("submit", ft+uf("b"))[len(`<query xmlns='jabber:iq:register'>`):], bad: true},
		{name: "legacy username after the data form", in: form("submit", ft+uf("b"))[:len(form("submit", ft+uf("b")))-len(`</query>`)] + `<username>a</username></query>`, bad: true},
		{name: "two data forms", in: form("submit", ft)[:len(form("submit", ft))-len(`</query>`)] + `<x xmlns='jabber:x:data' type='submit'>` + ft + `</x></query>`, bad: true},
		{name: "data form, oversized value", in: form("submit", ft+pf(strings.Repeat("p", 4097))), bad: true},
		{name: "data form, value at 4096 bytes", in: form("submit", ft+pf(strings.Repeat("p", 4096))),
			want: account.Query{Password: strings.Repeat("p", 4096), HasPassword: true, Form: true}},
		{name: "data form, element in a value", in: form("submit", ft+`<field var='username'><value>a<b/></value></field>`), bad: true},
		{name: "data form, 16 levels", in: form("submit", ft+`<field var='x'>`+strings.Repeat("<y>", 14)+strings.Repeat("</y>", 14)+`</field><field var='username'>`+strings.Repeat("<y>", 14)+strings.Repeat("</y>", 14)+`</field>`),
			want: account.Query{HasUsername: true, Form: true}},
		{name: "data form, deep unknown field", in: form("submit", ft+`<field var='x'>`+strings.Repeat("<y>", 15)+strings.Repeat("</y>", 15)+`</field>`), bad: true},
		{name: "data form, deep inside a known field", in: form("submit", ft+`<field var='username'>`+strings.Repeat("<y>", 15)+strings.Repeat("</y>", 15)+`</field>`), bad: true},
		{name: "data form, too many fields", in: form("submit", ft+strings.Repeat(`<field var='x'/>`, 64)), bad: true},
		{name: "data form, 64 fields", in: form("submit", ft+strings.Repeat(`<field var='x'/>`, 63)), want: account.Query{Form: true}},
		{name: "data form, truncated", in: `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>` + ft + `<field var='username'><value>bi`, bad: true},
		{name: "data form, truncated after a field", in: `<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>` + ft, bad: true},
		{name: "foreign-namespace username ignored", in: `<query xmlns='jabber:iq:register'><username xmlns='urn:example'>z</username></query>`},
		{name: "wrong namespace", in: `<query xmlns='jabber:iq:roster'/>`, bad: true},
		{name: "wrong element", in: `<register xmlns='jabber:iq:register'/>`, bad: true},
		{name: "duplicate username", in: `<query xmlns='jabber:iq:register'><username>a</username><username>b</username></query>`, bad: true},
		{name: "duplicate password", in: `<query xmlns='jabber:iq:register'><password>a</password><password>b</password></query>`, bad: true},
		{name: "nested in username", in: `<query xmlns='jabber:iq:register'><username>a<b/></username></query>`, bad: true},
		{name: "truncated", in: `<query xmlns='jabber:iq:register'><username>bill`, bad: true},
		{name: "oversized field", in: `<query xmlns='jabber:iq:register'><password>` + strings.Repeat("p", 5000) + `</password></query>`, bad: true},
		{name: "deep nesting", in: `<query xmlns='jabber:iq:register'>` + strings.Repeat("<x>", 40) + strings.Repeat("</x>", 40) + `</query>`, bad: true},
		{name: "16 levels below the query", in: `<query xmlns='jabber:iq:register'>` + strings.Repeat("<x>", 16) + strings.Repeat("</x>", 16) + `<remove/></query>`,
			want: account.Query{Remove: true}},
		{name: "17 levels below the query", in: `<query xmlns='jabber:iq:register'>` + strings.Repeat("<x>", 17) + strings.Repeat("</x>", 17) + `</query>`, bad: true},
		{name: "deep inside remove", in: `<query xmlns='jabber:iq:register'><remove>` + strings.Repeat("<x>", 16) + strings.Repeat("</x>", 16) + `</remove></query>`, bad: true},
		{name: "deep foreign element", in: `<query xmlns='jabber:iq:register'><x xmlns='urn:example'>` + strings.Repeat("<y>", 40) + strings.Repeat("</y>", 40) + `</x></query>`, bad: true},
		{name: "very deep, unclosed", in: `<query xmlns='jabber:iq:register'>` + strings.Repeat("<x>", 100000), bad: true},
		{name: "field at 4096 bytes", in: `<query xmlns='jabber:iq:register'><username>` + strings.Repeat("u", 4096) + `</username></query>`,
			want: account.Query{Username: strings.Repeat("u", 4096), HasUsername: true}},
		{name: "field at 4097 bytes", in: `<query xmlns='jabber:iq:register'><username>` + strings.Repeat("u", 4097) + `</username></query>`, bad: true},
		{name: "truncated inside a skipped element", in: `<query xmlns='jabber:iq:register'><remove><x>`, bad: true},
		{name: "nothing", in: ``, bad: true},
		{name: "text only", in: `hello`, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := account.ParseQuery(xml.NewDecoder(strings.NewReader(tc.in)))
			if tc.bad {
				if !errors.Is(err, account.ErrBadRequest) {
					t.Fatalf("ParseQuery = %+v, %v; want ErrBadRequest", q, err)
				}
				return
			}
			if err != nil || q != tc.want {
				t.Fatalf("ParseQuery = %+v, %v; want %+v", q, err, tc.want)
			}
		})
	}
}

func FuzzRegisterQuery(f *testing.F) {
	f.Add(`<query xmlns='jabber:iq:register'><username>bill</username><password>Calliope</password></query>`)
	f.Add(`<query xmlns='jabber:iq:register'><remove/></query>`)
	f.Add(`<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data'><field/></x><username/></query>`)
	f.Add(`<query xmlns='jabber:iq:register'><username>a<b/></username>`)
	f.Add(form("submit", ft+uf("bill")+pf("Calliope")))
	f.Add(form("submit", ft+`<field var='x'><value>1</value><value>2</value></field>`+`<field var='password'><value>a</value><value>b</value></field>`))
	f.Add(`<query xmlns='jabber:iq:register'><username>a</username>` + form("submit", ft+uf("b"))[len(`<query xmlns='jabber:iq:register'>`):])
	f.Add(`<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'>` + ft + `<field var='username'><value>bi`)
	f.Add(`<query xmlns='jabber:iq:register'>` + strings.Repeat("<x>", 17) + strings.Repeat("</x>", 17) + `</query>`)
	f.Fuzz(func(t *testing.T, in string) {
		q, err := account.ParseQuery(xml.NewDecoder(strings.NewReader(in)))
		if err != nil {
			if !errors.Is(err, account.ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if len(q.Username) > 4096 || len(q.Password) > 4096 {
			t.Fatalf("accepted an oversized field")
		}
		if (q.Username != "" && !q.HasUsername) || (q.Password != "" && !q.HasPassword) {
			t.Fatalf("inconsistent query %+v", q)
		}
		if q.Form && !strings.Contains(in, "jabber:x:data") {
			t.Fatalf("a data form found in %q", in)
		}
	})
}

// TestHandlerRemoveHook: with HandlerConfig.Remove the handler answers at
// once and hands the deletion to the server, after the result is written,
// without deleting anything itself (the server ends the sessions first).
func TestHandlerRemoveHook(t *testing.T) {
	e := newEnv(t, account.Config{})
	e.seed(t, "alice")
	removed := make(chan jid.JID, 1)
	var out bytes.Buffer
	h := account.NewHandler(e.m, account.HandlerConfig{
		Secure: true,
		User:   jid.MustParse("alice@example.org/phone"),
		Kick:   func(jid.JID) { t.Error("Kick called although Remove is set") },
		Remove: func(u jid.JID) {
			if !strings.Contains(out.String(), `type="result"`) {
				t.Errorf("Remove called before the result was written: %q", out.String())
			}
			if _, err := e.m.Get(ctx, "alice"); err != nil {
				t.Errorf("account touched before Remove: %v", err)
			}
			removed <- u
		},
	})
	if err := xmpptest.Handle(t, mux.New(stanza.NSClient, account.Handle(h)), iq("set", "<remove/>"), &out); err != nil {
		t.Fatal(err)
	}
	if r := parseReply(t, out.String()); r.Type != "result" {
		t.Fatalf("answer %q", out.String())
	}
	select {
	case u := <-removed:
		if u.String() != "alice@example.org" {
			t.Fatalf("Remove(%v), want alice@example.org", u)
		}
	case <-time.After(time.Minute): // a guard against hanging, not timing
		t.Fatal("Remove not called")
	}
}
