package mam_test

import (
	"bytes"
	"encoding/xml"

	"chatbx.eu/privacy/mam"
	"mellium.im/xmpp/jid"
)

// archiveTokensDeliver archives a message held as tokens and returns the
// message to deliver as tokens: with the pre-redesign API that meant
// ArchiveTokens and parsing Result.Deliver again, as a mellium server did.
func archiveTokensDeliver(a *mam.Archiver, from, to jid.JID, start xml.StartElement, inner []xml.Token) (xml.StartElement, []xml.Token, error) {
	res, err := a.ArchiveTokens(ctx, from, to, start, inner)
	if err != nil {
		return xml.StartElement{}, nil, err
	}
	return decodeElement(res.Deliver)
}

func decodeElement(b []byte) (xml.StartElement, []xml.Token, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	tok, err := d.Token()
	if err != nil {
		return xml.StartElement{}, nil, err
	}
	start := tok.(xml.StartElement).Copy()
	var inner []xml.Token
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return start, inner, err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			if depth == 0 {
				return start, inner, nil
			}
			depth--
		}
		inner = append(inner, xml.CopyToken(tok))
	}
}
