package mam

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"io"
	"iter"
)

// WriteExport writes one user's archive in the XEP-0227 format:
//
//	<archive xmlns='urn:xmpp:pie:0#mam'>
//	  <prefs xmlns='urn:xmpp:mam:2' default='never'><always/><never/></prefs>
//	  <result xmlns='urn:xmpp:mam:2' id='ARCHIVE-ID'>
//	    <forwarded xmlns='urn:xmpp:forward:0'>
//	      <delay xmlns='urn:xmpp:delay' stamp='…'/>
//	      <message …/>
//	    </forwarded>
//	  </result>
//	  …
//	</archive>
//
// The stored stanzas are written verbatim. msgs yields the messages in
// archive order; the first error it yields stops the export and is
// returned. Store implementations use it for their Export method.
func WriteExport(w io.Writer, p Prefs, msgs iter.Seq2[Message, error]) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("<archive xmlns='" + nsPIE + "'>")
	def := p.Default
	if def == "" {
		def = DefaultNever
	}
	bw.WriteString("<prefs xmlns='urn:xmpp:mam:2' default='")
	xmlEscape(bw, string(def))
	bw.WriteString("'><always>")
	for _, j := range p.Always {
		bw.WriteString("<jid>")
		xmlEscape(bw, j.String())
		bw.WriteString("</jid>")
	}
	bw.WriteString("</always><never>")
	for _, j := range p.Never {
		bw.WriteString("<jid>")
		xmlEscape(bw, j.String())
		bw.WriteString("</jid>")
	}
	bw.WriteString("</never></prefs>")
	for m, err := range msgs {
		if err != nil {
			return err
		}
		bw.WriteString("<result xmlns='urn:xmpp:mam:2' id='")
		xmlEscape(bw, m.ID)
		bw.WriteString("'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='")
		bw.WriteString(formatTime(m.Time))
		bw.WriteString("'/>")
		bw.Write(m.Stanza)
		bw.WriteString("</forwarded></result>")
	}
	bw.WriteString("</archive>")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("mam: export: %w", err)
	}
	return nil
}

func xmlEscape(w io.Writer, s string) {
	// xml.EscapeText only fails when w fails; bufio.Writer keeps that
	// error for Flush.
	_ = xml.EscapeText(w, []byte(s))
}
