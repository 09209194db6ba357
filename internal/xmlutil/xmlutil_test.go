package xmlutil_test

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"chatbx.eu/privacy/internal/xmlutil"
)

// open returns a decoder of doc positioned after its first start element.
func open(t testing.TB, doc string) *xml.Decoder {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("no start element in %q: %v", doc, err)
		}
		if _, ok := tok.(xml.StartElement); ok {
			return d
		}
	}
}

// rest returns the local names of the start elements left in d, so that a
// test sees where a function stopped.
func rest(d xml.TokenReader) string {
	var names []string
	for {
		tok, err := d.Token()
		if se, ok := tok.(xml.StartElement); ok {
			names = append(names, se.Name.Local)
		}
		if err != nil {
			return strings.Join(names, ",")
		}
	}
}

// eofWith returns its tokens, the last one together with io.EOF, as
// xml.TokenReader allows.
type eofWith struct{ toks []xml.Token }

func (r *eofWith) Token() (xml.Token, error) {
	switch len(r.toks) {
	case 0:
		return nil, io.EOF
	case 1:
		t := r.toks[0]
		r.toks = nil
		return t, io.EOF
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	return t, nil
}

// failing returns its tokens, then err forever.
type failing struct {
	toks []xml.Token
	err  error
}

func (r *failing) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, r.err
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	return t, nil
}

func start(local string) xml.StartElement { return xml.StartElement{Name: xml.Name{Local: local}} }
func end(local string) xml.EndElement     { return xml.EndElement{Name: xml.Name{Local: local}} }

func TestReadText(t *testing.T) {
	for _, tc := range []struct {
		doc   string
		limit int
		want  string
		err   error
		rest  string
	}{
		{"<a>hello</a><n/>", 10, "hello", nil, "n"},
		{"<a></a><n/>", 0, "", nil, "n"},
		{"<a/><n/>", 0, "", nil, "n"},
		{"<a>x<!-- c -->y<?p i?>z</a>", 10, "xyz", nil, ""},
		{"<a>a&amp;b<![CDATA[<c>]]></a>", 10, "a&b<c>", nil, ""},
		{"<a>0123456789</a>", 10, "0123456789", nil, ""},
		{"<a>0123456789x</a>", 10, "", xmlutil.ErrTooLong, ""},
		{"<a>01234<![CDATA[56789]]>x</a>", 10, "", xmlutil.ErrTooLong, ""},
		{"<a>x</a>", -1, "", xmlutil.ErrTooLong, ""},
		{"<a></a>", -1, "", nil, ""},
		{"<a>x<b/>y</a>", 10, "", xmlutil.ErrNotText, ""},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			d := open(t, tc.doc)
			got, err := xmlutil.ReadText(d, tc.limit)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("ReadText = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if err == nil {
				if r := rest(d); r != tc.rest {
					t.Errorf("left %q, want %q", r, tc.rest)
				}
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		_, err := xmlutil.ReadText(open(t, "<a>text"), 10)
		if err == nil || errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("ReadText of a truncated element = %v, want an error", err)
		}
		_, err = xmlutil.ReadText(&eofWith{[]xml.Token{xml.CharData("x")}}, 10)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("ReadText at io.EOF = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("end-with-EOF", func(t *testing.T) {
		got, err := xmlutil.ReadText(&eofWith{[]xml.Token{xml.CharData("x"), end("a")}}, 10)
		if got != "x" || err != nil {
			t.Fatalf("ReadText = %q, %v; want x, nil", got, err)
		}
	})
	t.Run("reader-error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := xmlutil.ReadText(&failing{[]xml.Token{xml.CharData("x")}, boom}, 10)
		if !errors.Is(err, boom) {
			t.Fatalf("ReadText = %v, want %v", err, boom)
		}
	})
}

func TestSkip(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		rest string
	}{
		{"<a/><n/>", "n"},
		{"<a>text</a><n/>", "n"},
		{"<a><b><c/>x</b><b/></a><n/>", "n"},
		{"<a><a><a></a></a></a><n/>", "n"},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			d := open(t, tc.doc)
			if err := xmlutil.Skip(d); err != nil {
				t.Fatal(err)
			}
			if r := rest(d); r != tc.rest {
				t.Errorf("left %q, want %q", r, tc.rest)
			}
		})
	}
	if err := xmlutil.Skip(&eofWith{[]xml.Token{start("b"), end("b")}}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("Skip at io.EOF = %v, want io.ErrUnexpectedEOF", err)
	}
	if err := xmlutil.Skip(&eofWith{[]xml.Token{start("b"), end("b"), end("a")}}); err != nil {
		t.Errorf("Skip with the end element and io.EOF together = %v", err)
	}
	if err := xmlutil.Skip(open(t, "<a><b>")); err == nil {
		t.Error("Skip of a truncated document: no error")
	}
}

// children lists the children of the element just opened in r as
// "name=text" (or "name" for a child it skips: local name s…).
func children(r xml.TokenReader) (string, error) {
	var out []string
	for se, err := range xmlutil.Children(r) {
		if err != nil {
			return strings.Join(out, " "), err
		}
		if strings.HasPrefix(se.Name.Local, "s") {
			out = append(out, se.Name.Local)
			if err := xmlutil.Skip(r); err != nil {
				return strings.Join(out, " "), err
			}
			continue
		}
		v, err := xmlutil.ReadText(r, 100)
		if err != nil {
			return strings.Join(out, " "), err
		}
		out = append(out, se.Name.Local+"="+v)
	}
	return strings.Join(out, " "), nil
}

func TestChildren(t *testing.T) {
	for _, tc := range []struct {
		doc, want, rest string
	}{
		{"<a/><n/>", "", "n"},
		{"<a>text only</a><n/>", "", "n"},
		{"<a> <x>1</x> <!-- c --> <y>2</y><s><deep><s/></deep></s><z/></a><n/>", "x=1 y=2 s z=", "n"},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			d := open(t, tc.doc)
			got, err := children(d)
			if err != nil || got != tc.want {
				t.Fatalf("children = %q, %v; want %q", got, err, tc.want)
			}
			if r := rest(d); r != tc.rest {
				t.Errorf("left %q, want %q", r, tc.rest)
			}
		})
	}
	t.Run("inner-reader-EOF", func(t *testing.T) {
		// A reader of the content alone ends with io.EOF, not an end
		// element; with the last token or after it.
		toks := []xml.Token{start("x"), xml.CharData("1"), end("x"), start("y"), end("y")}
		for _, r := range []xml.TokenReader{&eofWith{toks}, &failing{toks, io.EOF}} {
			got, err := children(r)
			if got != "x=1 y=" || err != nil {
				t.Errorf("%T: children = %q, %v; want x=1 y=", r, got, err)
			}
		}
	})
	t.Run("child-cut-by-EOF", func(t *testing.T) {
		_, err := children(&eofWith{[]xml.Token{start("x"), xml.CharData("1")}})
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("children = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("reader-error", func(t *testing.T) {
		boom := errors.New("boom")
		got, err := children(&failing{[]xml.Token{start("x"), end("x")}, boom})
		if got != "x=" || !errors.Is(err, boom) {
			t.Errorf("children = %q, %v; want x=, %v", got, err, boom)
		}
		n := 0
		for _, err := range xmlutil.Children(&failing{nil, boom}) {
			n++
			if !errors.Is(err, boom) {
				t.Errorf("yielded %v, want %v", err, boom)
			}
		}
		if n != 1 {
			t.Errorf("the error was yielded %d times, want once", n)
		}
	})
	t.Run("break", func(t *testing.T) {
		d := open(t, "<a><x/><y/></a>")
		for se := range xmlutil.Children(d) {
			if se.Name.Local != "x" {
				t.Fatalf("first child %s", se.Name.Local)
			}
			break
		}
		if r := rest(d); r != "y" {
			t.Errorf("after break: left %q, want y", r)
		}
	})
}

// FuzzReadText holds ReadText, Skip and Children on arbitrary documents to
// a plain reference: ReadText returns exactly the concatenated character
// data of an element without children when it fits the limit and errors
// otherwise, and each of them stops right after the element's end element,
// where the reference (a depth count) stops.
func FuzzReadText(f *testing.F) {
	for _, s := range []string{
		"<a>hello</a><n/>", "<a/>", "<a>x<b/>y</a>", "<a><![CDATA[x]]>&lt;</a>", "<a>text",
		"<a><b>1</b><c><d/></c></a><n/>", "<a xmlns='u'><b xmlns='v'>é</b></a>",
	} {
		f.Add(s, 4)
	}
	f.Fuzz(func(t *testing.T, doc string, limit int) {
		limit %= 64
		ref := xml.NewDecoder(strings.NewReader(doc))
		if !seekStart(ref) {
			return
		}
		text, textOK, err := refText(ref)
		if err != nil {
			return // not well-formed: the functions must only not panic
		}
		after := rest(ref)

		d := xml.NewDecoder(strings.NewReader(doc))
		seekStart(d)
		got, err := xmlutil.ReadText(d, limit)
		switch {
		case textOK && len(text) <= max(limit, 0):
			if err != nil || got != text {
				t.Fatalf("ReadText = %q, %v; want %q", got, err, text)
			}
			if r := rest(d); r != after {
				t.Fatalf("ReadText left %q, want %q", r, after)
			}
		case err == nil:
			t.Fatalf("ReadText = %q, want an error (text %q, %v, limit %d)", got, text, textOK, limit)
		case len(got) > 0:
			t.Fatalf("ReadText returned %q with an error", got)
		}

		d = xml.NewDecoder(strings.NewReader(doc))
		seekStart(d)
		if err := xmlutil.Skip(d); err != nil {
			t.Fatalf("Skip: %v", err)
		}
		if r := rest(d); r != after {
			t.Fatalf("Skip left %q, want %q", r, after)
		}

		d = xml.NewDecoder(strings.NewReader(doc))
		seekStart(d)
		n := 0
		for _, err := range xmlutil.Children(d) {
			if err != nil {
				t.Fatalf("Children: %v", err)
			}
			n++
			if err := xmlutil.Skip(d); err != nil {
				t.Fatalf("Skip of a child: %v", err)
			}
		}
		if r := rest(d); r != after {
			t.Fatalf("Children left %q, want %q", r, after)
		}
		if textOK && n != 0 {
			t.Fatalf("Children yielded %d children of a text-only element", n)
		}
	})
}

func seekStart(d *xml.Decoder) bool {
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		if _, ok := tok.(xml.StartElement); ok {
			return true
		}
	}
}

// refText reads the element just opened in d to its end: its character
// data, whether it had no child element, and d's error if it is not
// well-formed.
func refText(d *xml.Decoder) (string, bool, error) {
	var b strings.Builder
	depth, textOnly := 1, true
	for depth > 0 {
		tok, err := d.Token()
		if err != nil {
			return "", false, fmt.Errorf("ref: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			textOnly = false
		case xml.EndElement:
			depth--
		case xml.CharData:
			b.Write(t)
		}
	}
	return b.String(), textOnly, nil
}

func TestSkipDepth(t *testing.T) {
	deep := func(n int) string {
		return strings.Repeat("<a>", n) + strings.Repeat("</a>", n) + "<n/>"
	}
	for _, tc := range []struct {
		name  string
		doc   string
		limit int
		err   error
		rest  string
	}{
		{"empty-limit-1", "<a/><n/>", 1, nil, "n"},
		{"child-limit-1", "<a><b/></a><n/>", 1, xmlutil.ErrTooDeep, ""},
		{"below-0-is-1", "<a>text</a><n/>", -5, nil, "n"},
		{"child-below-0", "<a><b/></a><n/>", 0, xmlutil.ErrTooDeep, ""},
		{"at-limit", deep(16), 16, nil, "n"},
		{"one-over", deep(17), 16, xmlutil.ErrTooDeep, ""},
		{"siblings-do-not-add", "<a><b><c/></b><b><c/></b><b><c/></b></a><n/>", 3, nil, "n"},
		{"far-too-deep", deep(100000), 16, xmlutil.ErrTooDeep, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := open(t, tc.doc)
			err := xmlutil.SkipDepth(d, tc.limit)
			if !errors.Is(err, tc.err) {
				t.Fatalf("SkipDepth = %v, want %v", err, tc.err)
			}
			if err == nil {
				if r := rest(d); r != tc.rest {
					t.Errorf("left %q, want %q", r, tc.rest)
				}
			}
		})
	}
	t.Run("stops-at-the-first-too-deep", func(t *testing.T) {
		// Past the limit SkipDepth reads no further: the reader's stack of
		// open elements stops growing there.
		d := open(t, deep(100000))
		if err := xmlutil.SkipDepth(d, 16); !errors.Is(err, xmlutil.ErrTooDeep) {
			t.Fatalf("SkipDepth = %v", err)
		}
		if got := d.InputOffset(); got != int64(17*len("<a>")) {
			t.Errorf("read %d bytes, want %d", got, 17*len("<a>"))
		}
	})
	if err := xmlutil.SkipDepth(&eofWith{[]xml.Token{start("b"), end("b")}}, 4); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("SkipDepth at io.EOF = %v, want io.ErrUnexpectedEOF", err)
	}
}

// FuzzSkipDepth holds SkipDepth to a depth count on arbitrary well-formed
// documents: it succeeds and stops where Skip stops when the element nests
// at most limit levels, and returns ErrTooDeep otherwise.
func FuzzSkipDepth(f *testing.F) {
	for _, s := range []string{"<a/>", "<a><b><c/></b></a><n/>", "<a><b/><b><c><d/></c></b></a>"} {
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, doc string, limit int) {
		limit %= 32
		ref := xml.NewDecoder(strings.NewReader(doc))
		if !seekStart(ref) {
			return
		}
		deepest, err := refDepth(ref)
		if err != nil {
			return
		}
		after := rest(ref)
		d := xml.NewDecoder(strings.NewReader(doc))
		seekStart(d)
		err = xmlutil.SkipDepth(d, limit)
		if deepest <= max(limit, 1) {
			if err != nil {
				t.Fatalf("SkipDepth(depth %d, limit %d) = %v", deepest, limit, err)
			}
			if r := rest(d); r != after {
				t.Fatalf("SkipDepth left %q, want %q", r, after)
			}
		} else if !errors.Is(err, xmlutil.ErrTooDeep) {
			t.Fatalf("SkipDepth(depth %d, limit %d) = %v, want ErrTooDeep", deepest, limit, err)
		}
	})
}

// refDepth reads the element just opened in d to its end and returns its
// deepest nesting, the element itself being level 1.
func refDepth(d *xml.Decoder) (int, error) {
	depth, deepest := 1, 1
	for depth > 0 {
		tok, err := d.Token()
		if err != nil {
			return 0, err
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			deepest = max(deepest, depth)
		case xml.EndElement:
			depth--
		}
	}
	return deepest, nil
}
