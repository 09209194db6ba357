package logredact

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// tailKeep is how many bytes of an overlong line a Scrubber holds back when
// it writes the rest out: more than the longest address, so that an address
// at the end is never cut in two.
const tailKeep = 64

// Scrubber is an io.Writer that anonymizes the IP addresses in free text
// before passing it on: for http.Server.ErrorLog (log.New(scrubber, "", 0))
// and for libraries that log to an io.Writer. It recognizes IPv4
// (dotted quads, leading zeros included), IPv6 in every textual form
// (compressed, full, [v6]:port, IPv4-mapped ::ffff:a.b.c.d, with a %zone)
// and host:port, wherever they appear in the text, and replaces them as the
// Handler does (Options.Mode). Tokens that merely look like addresses are
// left alone where that is safe (12:30:45, std::vector, MAC addresses);
// where text is ambiguous, privacy wins: "1.2.3.4" is anonymized even if it
// was a version number, a dotted chain of more than four numbers has all
// but its leading IPv4Bits/8 numbers zeroed, junk glued to an IPv6 address
// goes with it, and a run of address characters too tangled to search
// quickly (crafted input such as a long "1:1.1:1.…") is replaced by the
// marker whole, so scanning stays linear in the input.
//
// Text is written line by line: a line split across several Writes is held
// until its newline arrives, so an address split across Writes is still
// found. A line longer than Options.MaxLine is written out in pieces,
// never cutting through an address. Call Flush or Close to write a final
// line that has no newline.
//
// A Scrubber is safe for concurrent use. Each Write of complete lines makes
// exactly one Write to the underlying writer.
type Scrubber struct {
	w  io.Writer
	an *anonymizer

	mu     sync.Mutex
	buf    []byte // the start of a line whose newline has not come yet
	out    []byte // scratch for the scrubbed text
	spans  []span // scratch
	closed bool
}

// NewScrubber returns a Scrubber writing to w. opts may be nil: the zero
// Options is the private default (truncate to /24 and /48). The maintenance
// window of the Handler does not apply to a Scrubber.
func NewScrubber(w io.Writer, opts *Options) *Scrubber {
	return &Scrubber{w: w, an: newAnonymizer(opts)}
}

// Write scrubs the complete lines of p (with the held start of the first
// one) and writes them; it holds the start of an unfinished last line.
// It returns len(p) unless the Scrubber is closed, and the error of the
// underlying writer, if any.
func (s *Scrubber) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	n := len(p)
	var err error
	if nl := bytes.LastIndexByte(p, '\n'); nl >= 0 {
		if len(s.buf) == 0 {
			err = s.emit(p[:nl+1], nil, false)
		} else {
			s.buf = append(s.buf, p[:nl+1]...)
			err = s.emit(s.buf, nil, false)
			s.buf = s.buf[:0]
		}
		p = p[nl+1:]
	}
	s.buf = append(s.buf, p...)
	for len(s.buf) > s.an.maxLine {
		if werr := s.emitPart(); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// emitPart writes out the start of an overlong buffered line, keeping at
// least tailKeep bytes and never cutting an address in two.
func (s *Scrubber) emitPart() error {
	b := s.buf
	spans := scan(b, s.spans[:0])
	s.spans = spans
	cut := len(b) - tailKeep
	// Prefer not to cut through a run of address characters at all.
	c := cut
	for c > 0 && classes[b[c-1]]&runClasses != 0 && classes[b[c]]&runClasses != 0 {
		c--
	}
	if c > 0 {
		cut = c
	}
	// In a giant run, extend the cut past any address it would split.
	n := 0
	for _, sp := range spans {
		if sp.start >= cut {
			break
		}
		if sp.end > cut {
			cut = sp.end
		}
		n++
	}
	err := s.emit(b[:cut], spans[:n], true)
	rest := copy(s.buf, b[cut:])
	s.buf = s.buf[:rest]
	return err
}

// emit scrubs and writes chunk; if scanned, spans are its spans already.
func (s *Scrubber) emit(chunk []byte, spans []span, scanned bool) error {
	if !scanned {
		spans = scan(chunk, s.spans[:0])
		s.spans = spans
	}
	out := chunk
	if len(spans) > 0 {
		s.out = appendScrubbed(s.out[:0], chunk, spans, s.an.view())
		out = s.out
	}
	if len(out) == 0 {
		return nil
	}
	if _, err := s.w.Write(out); err != nil {
		return fmt.Errorf("logredact: scrubber: %w", err)
	}
	return nil
}

// Flush scrubs and writes the held start of an unfinished line.
func (s *Scrubber) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

func (s *Scrubber) flushLocked() error {
	if len(s.buf) == 0 {
		return nil
	}
	err := s.emit(s.buf, nil, false)
	s.buf = s.buf[:0]
	return err
}

// Close flushes the Scrubber; later Writes fail with ErrClosed. It does not
// close the underlying writer.
func (s *Scrubber) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.flushLocked()
}
