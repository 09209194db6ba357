package main

import (
	"encoding/xml"
	"sort"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/mam"
	"mellium.im/xmlstream"
	"mellium.im/xmpp/carbons"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"
)

// discoIdentity is one XEP-0030 identity.
type discoIdentity struct {
	Category string `xml:"category,attr"`
	Type     string `xml:"type,attr"`
	Name     string `xml:"name,attr,omitempty"`
}

// discoItem is one XEP-0030 item.
type discoItem struct {
	JID  string `xml:"jid,attr"`
	Name string `xml:"name,attr,omitempty"`
}

// discoInfo is what one JID answers to disco#info and disco#items. mellium's
// disco.Handle answers the same for every addressee, so the server builds
// the answer per JID itself.
type discoInfo struct {
	Identities []discoIdentity
	Features   []string
	Forms      []xml.TokenReader // extended info (XEP-0128), e.g. upload limits
	Items      []discoItem
}

type xFeature struct {
	Var string `xml:"var,attr"`
}

// answerDisco writes the disco#info or disco#items result for info to t.
// Queries for a node get item-not-found: no JID here has nodes.
func (s *session) answerDisco(t xmlstream.TokenReadEncoder, iq stanza.IQ, payload xml.StartElement, info discoInfo) error {
	_, err := xmlstream.Copy(t, discoAnswer(iq, payload, info))
	return err
}

// discoAnswer is the answer to the disco#info or disco#items query iq
// (payload its query) for info: a result, or an error for a node, a set
// or a failure to encode.
func discoAnswer(iq stanza.IQ, payload xml.StartElement, info discoInfo) xml.TokenReader {
	for _, a := range payload.Attr {
		if a.Name.Local == "node" && a.Value != "" {
			return iq.Error(stanza.Error{Type: stanza.Cancel, Condition: stanza.ItemNotFound})
		}
	}
	if iq.Type != stanza.GetIQ {
		return iq.Error(stanza.Error{Type: stanza.Cancel, Condition: stanza.FeatureNotImplemented})
	}
	var r xml.TokenReader
	var err error
	if payload.Name.Space == disco.NSItems {
		r, err = marshalReader(struct {
			XMLName xml.Name
			Items   []discoItem `xml:"item"`
		}{XMLName: xml.Name{Space: disco.NSItems, Local: "query"}, Items: info.Items})
	} else {
		feats := append([]string{disco.NSInfo, disco.NSItems}, info.Features...)
		sort.Strings(feats)
		var fs []xFeature
		for i, f := range feats {
			if i > 0 && feats[i-1] == f {
				continue
			}
			fs = append(fs, xFeature{Var: f})
		}
		var q xml.TokenReader
		q, err = marshalReader(struct {
			XMLName    xml.Name
			Identities []discoIdentity `xml:"identity"`
			Features   []xFeature      `xml:"feature"`
		}{XMLName: xml.Name{Space: disco.NSInfo, Local: "query"}, Identities: info.Identities, Features: fs})
		if err == nil && len(info.Forms) > 0 {
			// Splice the forms in before </query>.
			toks, _ := xmlstream.ReadAll(q)
			end := toks[len(toks)-1]
			toks = toks[:len(toks)-1]
			for _, f := range info.Forms {
				ft, _ := xmlstream.ReadAll(f)
				toks = append(toks, ft...)
			}
			toks = append(toks, end)
			q = &sliceReader{toks: toks}
		}
		r = q
	}
	if err != nil {
		return iq.Error(stanza.Error{Type: stanza.Wait, Condition: stanza.InternalServerError})
	}
	return iq.Result(r)
}

// serverInfo is the domain's disco: the server and its services.
func (srv *Server) serverInfo() discoInfo {
	d := srv.cfg.Domain
	info := discoInfo{
		Identities: []discoIdentity{{Category: "server", Type: "im", Name: "chatbx privacy example"}},
		// The archive's features too: clients such as profanity look for
		// urn:xmpp:mam:2 on the server's disco, not the account's.
		Features: append([]string{ping.NS, roster.NS, stanza.NSSid, nsBlocking, nsReporting, carbons.NS}, mam.Features()...),
		Items: []discoItem{
			{JID: uploadHost(d), Name: "HTTP file upload"},
			{JID: conferenceHost(d), Name: "Group chats"},
		},
	}
	if srv.cfg.OpenRegistration {
		info.Features = append(info.Features, account.NS)
	}
	// profanity sends publish-options (OMEMO nodes open) only when the
	// server's disco lists them (PEP itself is on the account, pep.go).
	info.Features = append(info.Features, nsPubSubPublishOptions)
	info.Features = append(info.Features, srv.personalFeatures()...)
	return info
}

// accountInfo is the disco of a user's bare JID, answered to its owner:
// the account and its archive.
func (srv *Server) accountInfo(_ jid.JID) discoInfo {
	return discoInfo{
		Identities: []discoIdentity{{Category: "account", Type: "registered"}, pepIdentity},
		Features:   append(append([]string{account.NS}, mam.Features()...), pepFeatures()...),
	}
}
