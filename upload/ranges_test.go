package upload_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"chatbx.eu/privacy/upload"
)

// maxRanges is the most ranges a GET may ask for (upload/doc.go: 8).
const maxRanges = 8

// fileOf returns n bytes that differ from their neighbours, so that a wrong
// offset shows.
func fileOf(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return string(b)
}

// part is one range of a 206 answer.
type part struct {
	first, last int64
	body        string
}

// rangeAnswer checks a GET answer against the promise: 200 with the whole
// file, 416, or 206 with at most maxRanges non-overlapping parts, each the
// file's bytes at its Content-Range, adding up to at most the file's size.
// It returns the parts of a 206.
func rangeAnswer(t testing.TB, w *httptest.ResponseRecorder, file string) []part {
	t.Helper()
	switch w.Code {
	case http.StatusOK:
		if w.Body.String() != file {
			t.Fatalf("200 with %d bytes, want the %d-byte file", w.Body.Len(), len(file))
		}
		return nil
	case http.StatusRequestedRangeNotSatisfiable:
		return nil
	case http.StatusPartialContent:
	default:
		t.Fatalf("status %d", w.Code)
	}
	var parts []part
	mt, params, err := mime.ParseMediaType(w.Header().Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	if mt != "multipart/byteranges" {
		parts = append(parts, parsePart(t, w.Header().Get("Content-Range"), w.Body.String(), file))
	} else {
		mr := multipart.NewReader(w.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, parsePart(t, p.Header.Get("Content-Range"), string(b), file))
		}
	}
	if len(parts) == 0 || len(parts) > maxRanges {
		t.Fatalf("206 with %d parts", len(parts))
	}
	var total int64
	for i, p := range parts {
		total += p.last - p.first + 1
		for _, q := range parts[:i] {
			if p.first <= q.last && q.first <= p.last {
				t.Fatalf("overlapping parts %d-%d and %d-%d", q.first, q.last, p.first, p.last)
			}
		}
	}
	if total > int64(len(file)) {
		t.Fatalf("206 with %d bytes of ranges for a %d-byte file", total, len(file))
	}
	return parts
}

func parsePart(t testing.TB, cr, body, file string) part {
	t.Helper()
	var p part
	var size int
	if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &p.first, &p.last, &size); err != nil || size != len(file) {
		t.Fatalf("Content-Range %q: %v", cr, err)
	}
	if p.first < 0 || p.last < p.first || p.last >= int64(size) || file[p.first:p.last+1] != body {
		t.Fatalf("part %q does not hold the file's bytes %d-%d", body, p.first, p.last)
	}
	p.body = body
	return p
}

// TestRangeLimits: at most maxRanges ranges, none overlapping, else the
// whole file with 200 (RFC 9110 §14.2 lets a server ignore Range).
func TestRangeLimits(t *testing.T) {
	file := fileOf(1000)
	many := func(n, step int) string {
		var b strings.Builder
		b.WriteString("bytes=")
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d-%d", i*step, i*step)
		}
		return b.String()
	}
	e := newEnv(t, nil)
	s := e.upload(t, alice, "a.bin", "application/octet-stream", file)
	for _, tc := range []struct {
		name  string
		rng   []string
		code  int
		parts int
	}{
		{"the issue's 1000 one-byte ranges", []string{many(1000, 1)}, http.StatusOK, 0},
		{"nine ranges", []string{many(9, 10)}, http.StatusOK, 0},
		{"eight ranges", []string{many(8, 10)}, http.StatusPartialContent, 8},
		{"two ranges", []string{"bytes=0-9, 20-29"}, http.StatusPartialContent, 2},
		{"adjacent ranges", []string{"bytes=0-9,10-19"}, http.StatusPartialContent, 2},
		{"overlapping ranges", []string{"bytes=0-9,5-14"}, http.StatusOK, 0},
		{"the same range twice", []string{"bytes=0-9,0-9"}, http.StatusOK, 0},
		{"suffix overlapping an open range", []string{"bytes=900-,-50"}, http.StatusOK, 0},
		{"whole file twice", []string{"bytes=0-,-1000"}, http.StatusOK, 0},
		{"empty elements do not count", []string{"bytes=,,0-0,,,,,,,,,,5-5,"}, http.StatusPartialContent, 2},
		{"unsatisfiable ranges dropped", []string{"bytes=0-0,2000-3000"}, http.StatusPartialContent, 1},
		{"none satisfiable", []string{"bytes=1000-,2000-"}, http.StatusRequestedRangeNotSatisfiable, 0},
		{"single range", []string{"bytes=10-19"}, http.StatusPartialContent, 1},
		{"suffix", []string{"bytes=-10"}, http.StatusPartialContent, 1},
		{"open range", []string{"bytes=990-"}, http.StatusPartialContent, 1},
		{"past the end", []string{"bytes=1000-"}, http.StatusRequestedRangeNotSatisfiable, 0},
		{"end clipped", []string{"bytes=990-5000"}, http.StatusPartialContent, 1},
		{"other unit", []string{"items=0-1"}, http.StatusOK, 0},
		{"last before first", []string{"bytes=9-0"}, http.StatusOK, 0},
		{"zero suffix", []string{"bytes=-0"}, http.StatusOK, 0},
		{"signs", []string{"bytes=+1-2"}, http.StatusOK, 0},
		{"no dash", []string{"bytes=5"}, http.StatusOK, 0},
		{"empty set", []string{"bytes="}, http.StatusOK, 0},
		{"two Range fields", []string{"bytes=0-1", "bytes=5-6"}, http.StatusOK, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.get(t, http.MethodGet, s.GetURL, func(r *http.Request) { r.Header["Range"] = tc.rng })
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d (%d bytes)", w.Code, tc.code, w.Body.Len())
			}
			if parts := rangeAnswer(t, w, file); len(parts) != tc.parts {
				t.Fatalf("%d parts, want %d", len(parts), tc.parts)
			}
		})
	}
}

// TestRangeAnswerSize: the request (1,000 one-byte ranges of a
// 1,000-byte file) got a 144 KB answer; now it gets the file.
func TestRangeAnswerSize(t *testing.T) {
	file := fileOf(1000)
	e := newEnv(t, nil)
	s := e.upload(t, alice, "a.bin", "", file)
	var b strings.Builder
	b.WriteString("bytes=0-0")
	for i := 1; i < 1000; i++ {
		fmt.Fprintf(&b, ",%d-%d", i, i)
	}
	w := e.get(t, http.MethodGet, s.GetURL, func(r *http.Request) { r.Header.Set("Range", b.String()) })
	if w.Body.Len() > len(file) {
		t.Fatalf("%d bytes answered for a %d-byte file", w.Body.Len(), len(file))
	}
}

// FuzzRange drives GETs with arbitrary Range headers: never a panic, and
// every answer keeps the promise checked by rangeAnswer.
func FuzzRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-0", "bytes=0-9,20-29", "bytes=0-9,5-14", "bytes=-5",
		"bytes=990-", "bytes=1000-", "bytes=,,1-1,", "bytes= 1-2 ,\t3-4", "bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8",
		"bytes=-0", "bytes=99999999999999999999-", "Bytes=0-1", "bytes=0-0,-1000"} {
		f.Add(s, uint16(1000))
	}
	f.Add("bytes=-5", uint16(0))
	f.Add("bytes=-5,-6", uint16(0))
	e := newEnv(f, func(c *upload.Config) { c.DailyFiles, c.DailyQuota, c.StoredQuota = -1, -1, -1 })
	files := map[uint16]upload.Slot{}
	f.Fuzz(func(t *testing.T, rng string, n uint16) {
		n %= 2049
		file := fileOf(int(n))
		s, ok := files[n]
		if !ok {
			s = e.upload(t, alice, "f.bin", "", file)
			files[n] = s
		}
		w := e.get(t, http.MethodGet, s.GetURL, func(r *http.Request) { r.Header.Set("Range", rng) })
		rangeAnswer(t, w, file)
		if w.Code == http.StatusOK && !bytes.Equal(w.Body.Bytes(), []byte(file)) {
			t.Fatal("200 without the file")
		}
	})
}
