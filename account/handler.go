package account

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"
)

// defaultInstructions is the text of a registration form when
// HandlerConfig.Instructions is empty.
const defaultInstructions = "Choose a username and a password. A pseudonym is welcome; no e-mail address or real name is needed."

// handlerTimeout bounds the work of one IQ (hashing, deletion).
const handlerTimeout = time.Minute

// HandlerConfig describes the session a Handler serves. A server builds one
// Handler per session (cheap: no allocation beyond the struct), before
// authentication for registration and again after it for password change
// and removal.
type HandlerConfig struct {
	// User is the session's authenticated JID; the zero JID before
	// authentication. Only its localpart is used.
	User jid.JID
	// Secure reports whether the stream is protected by TLS. Registration
	// and password change are refused without it.
	Secure bool
	// ClientKey identifies the client for rate limiting (see
	// Config.Exempt), e.g. its IP address.
	ClientKey string
	// Open allows in-band registration of new accounts. Closed by default.
	Open bool
	// Kick ends every session of user, with a not-authorized stream
	// error, after a successful <remove/>. HandleIQ calls it in a new
	// goroutine once the result is written: mellium flushes a handler's
	// output only when the handler returns, and a Send on the same session
	// waits until then, so the result reaches the client before the
	// stream error (sending from within the handler would deadlock).
	Kick func(user jid.JID)
	// Remove, when set, takes a <remove/> over from the handler: the
	// handler answers with a result at once and then calls Remove, in a new
	// goroutine, instead of Manager.Delete followed by Kick. A server whose
	// open sessions may still write the user's data (a message being
	// archived, an upload) uses it to end those sessions and wait until
	// they are closed before it calls Manager.Delete, so that nothing is
	// written after the erasure. Remove must call Manager.Delete; it owns
	// the error (an interrupted erasure is journaled and finished by
	// Manager.Resume).
	Remove func(user jid.JID)
	// Instructions is the text of the registration form. "" means
	// "Choose a username and a password. A pseudonym is welcome; no
	// e-mail address or real name is needed."
	Instructions string
}

// Handler answers XEP-0077 In-Band Registration IQs
// (jabber:iq:register) for one session: the registration form and
// registration before authentication, password change and <remove/>
// after it.
type Handler struct {
	m *Manager
	c HandlerConfig
}

var (
	_ mux.IQHandler    = (*Handler)(nil)
	_ info.FeatureIter = (*Handler)(nil)
)

// NewHandler returns a Handler answering for the session described by c.
func NewHandler(m *Manager, c HandlerConfig) *Handler {
	if c.Instructions == "" {
		c.Instructions = defaultInstructions
	}
	return &Handler{m: m, c: c}
}

// Handle returns a mux option registering h for get and set queries in
// the jabber:iq:register namespace.
func Handle(h *Handler) mux.Option {
	name := xml.Name{Space: NS, Local: "query"}
	get, set := mux.IQ(stanza.GetIQ, name, h), mux.IQ(stanza.SetIQ, name, h)
	return func(m *mux.ServeMux) {
		get(m)
		set(m)
	}
}

// ForFeatures implements info.FeatureIter: the jabber:iq:register feature.
func (h *Handler) ForFeatures(node string, f func(info.Feature) error) error {
	if node != "" {
		return nil
	}
	return f(info.Feature{Var: NS})
}

// HandleIQ implements mux.IQHandler. It answers every request, errors
// included, with an IQ result or error, and returns only errors of the
// stream itself.
func (h *Handler) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	payload := xmlstream.MultiReader(xmlstream.Token(start.Copy()), xmlstream.InnerElement(t))
	reply, afterSend := h.Respond(ctx, iq, payload)
	if _, err := xmlstream.Copy(t, reply); err != nil {
		return err
	}
	go afterSend() // see HandlerConfig.Kick
	return nil
}

// Respond computes the answer to one registration IQ whose payload (the
// <query/> element, start to end) is read from payload. It returns the
// reply to send and a function to call once the reply was sent (it calls
// HandlerConfig.Kick, or HandlerConfig.Remove, after a <remove/>;
// otherwise it does nothing). It is the core of HandleIQ, for servers that
// route IQs themselves.
func (h *Handler) Respond(ctx context.Context, iq stanza.IQ, payload xml.TokenReader) (reply xml.TokenReader, afterSend func()) {
	nop := func() {}
	q, err := ParseQuery(payload)
	if err != nil {
		return iq.Error(stanzaErr(stanza.Modify, stanza.BadRequest, "malformed registration query")), nop
	}
	authed := h.c.User.Localpart() != ""
	switch {
	case iq.Type == stanza.GetIQ && authed:
		return iq.Result(h.registered()), nop
	case iq.Type == stanza.GetIQ:
		if !h.c.Open {
			return iq.Error(stanzaErr(stanza.Cancel, stanza.NotAllowed, "in-band registration is closed")), nop
		}
		return iq.Result(h.form()), nop
	case iq.Type != stanza.SetIQ:
		return iq.Error(stanzaErr(stanza.Modify, stanza.BadRequest, "")), nop
	case authed && q.Remove:
		return h.remove(ctx, iq)
	case authed:
		return h.changePassword(ctx, iq, q), nop
	case q.Remove:
		return iq.Error(stanzaErr(stanza.Auth, stanza.NotAuthorized, "authenticate to remove your account")), nop
	default:
		return h.register(ctx, iq, q), nop
	}
}

func (h *Handler) query(children ...xml.TokenReader) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.MultiReader(children...), xml.StartElement{Name: xml.Name{Space: NS, Local: "query"}})
}

func empty(local string) xml.TokenReader {
	return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: local}})
}

func textElem(local, text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{Name: xml.Name{Local: local}})
}

// form is the registration form: instructions, username, password, both as
// legacy fields (XEP-0077 §3.1) and as an XEP-0004 data form (§8), which
// clients such as Dino require.
func (h *Handler) form() xml.TokenReader {
	return h.query(textElem("instructions", h.c.Instructions), empty("username"), empty("password"), h.dataForm())
}

// dataForm is the registration form as an XEP-0004 form of type form, with
// the hidden FORM_TYPE field jabber:iq:register and the two required
// fields username (text-single) and password (text-private).
func (h *Handler) dataForm() xml.TokenReader {
	return xmlstream.Wrap(xmlstream.MultiReader(
		textElem("title", "Registration"),
		textElem("instructions", h.c.Instructions),
		field("FORM_TYPE", "hidden", "", textElem("value", NS)),
		field("username", "text-single", "Username", empty("required")),
		field("password", "text-private", "Password", empty("required")),
	), xml.StartElement{
		Name: xml.Name{Space: nsData, Local: "x"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "form"}},
	})
}

// field is a data form field; label "" means none.
func field(name, typ, label string, children ...xml.TokenReader) xml.TokenReader {
	attrs := []xml.Attr{{Name: xml.Name{Local: "var"}, Value: name}, {Name: xml.Name{Local: "type"}, Value: typ}}
	if label != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "label"}, Value: label})
	}
	return xmlstream.Wrap(xmlstream.MultiReader(children...), xml.StartElement{Name: xml.Name{Local: "field"}, Attr: attrs})
}

// registered tells an authenticated user they are registered (§3.2).
func (h *Handler) registered() xml.TokenReader {
	return h.query(empty("registered"), textElem("username", h.c.User.Localpart()), empty("password"))
}

func (h *Handler) register(ctx context.Context, iq stanza.IQ, q Query) xml.TokenReader {
	switch {
	case !h.c.Open:
		return iq.Error(stanzaErr(stanza.Cancel, stanza.NotAllowed, "in-band registration is closed"))
	case !h.c.Secure:
		return iq.Error(stanzaErr(stanza.Auth, stanza.NotAuthorized, "registration requires TLS"))
	case q.Username == "" || q.Password == "":
		return iq.Error(stanzaErr(stanza.Modify, stanza.NotAcceptable, "username and password are required"))
	}
	if err := h.m.Register(ctx, h.c.ClientKey, q.Username, q.Password); err != nil {
		return iq.Error(h.toStanza(ctx, err))
	}
	return iq.Result(nil)
}

func (h *Handler) changePassword(ctx context.Context, iq stanza.IQ, q Query) xml.TokenReader {
	switch {
	case !h.c.Secure:
		return iq.Error(stanzaErr(stanza.Cancel, stanza.NotAuthorized, "password change requires TLS"))
	case !q.HasUsername || !q.HasPassword || q.Password == "":
		return iq.Error(stanzaErr(stanza.Modify, stanza.BadRequest, "username and password are required"))
	}
	if name, err := h.m.Normalize(q.Username); err != nil || name != h.c.User.Localpart() {
		return iq.Error(stanzaErr(stanza.Cancel, stanza.NotAllowed, "you can only change your own password"))
	}
	if err := h.m.ChangePassword(ctx, h.c.User.Localpart(), q.Password); err != nil {
		return iq.Error(h.toStanza(ctx, err))
	}
	return iq.Result(nil)
}

func (h *Handler) remove(ctx context.Context, iq stanza.IQ) (xml.TokenReader, func()) {
	user := h.c.User.Bare()
	if h.c.Remove != nil {
		return iq.Result(nil), func() { h.c.Remove(user) }
	}
	err := h.m.Delete(ctx, user.Localpart())
	switch {
	case err == nil, errors.Is(err, ErrNotFound):
	case errors.Is(err, ErrErasureIncomplete):
		// The account is disabled and in the journal: Resume finishes it.
		// For the user it is gone.
	default:
		return iq.Error(h.toStanza(ctx, err)), func() {}
	}
	return iq.Result(nil), func() {
		if h.c.Kick != nil {
			h.c.Kick(user)
		}
	}
}

// toStanza maps the package's errors to stanza errors, in one place.
func (h *Handler) toStanza(ctx context.Context, err error) stanza.Error {
	var pe *PolicyError
	switch {
	case errors.As(err, &pe):
		return stanzaErr(stanza.Modify, stanza.NotAcceptable, pe.Reason)
	case errors.Is(err, ErrExists):
		return stanzaErr(stanza.Cancel, stanza.Conflict, "username not available")
	case errors.Is(err, ErrRateLimited):
		return stanzaErr(stanza.Wait, stanza.ResourceConstraint, "too many attempts; try again later")
	case errors.Is(err, ErrNotFound):
		return stanzaErr(stanza.Cancel, stanza.ItemNotFound, "")
	}
	h.m.log.LogAttrs(ctx, slog.LevelError, "registration request failed", slog.String("error", err.Error()))
	return stanzaErr(stanza.Wait, stanza.InternalServerError, "")
}

func stanzaErr(typ stanza.ErrorType, cond stanza.Condition, text string) stanza.Error {
	e := stanza.Error{Type: typ, Condition: cond}
	if text != "" {
		e.Text = map[string]string{"": text}
	}
	return e
}
