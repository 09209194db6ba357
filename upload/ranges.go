package upload

import (
	"slices"
	"strconv"
	"strings"
)

// maxRanges is the largest number of ranges a GET may ask for in one Range
// header. A request for more is answered 200 with the whole file.
const maxRanges = 8

// byteRange is a satisfiable range of a file: bytes [start, start+length).
type byteRange struct{ start, length int64 }

// allowRange reports whether the Range header value h may be handed to
// http.ServeContent for a file of size bytes. It may when h is empty, or when
// h is a well-formed bytes range set (RFC 9110 §14.1.2) of at most maxRanges
// ranges whose satisfiable parts do not overlap and add up to at most size.
// Anything else (another unit, a malformed or zero-length range, more than
// maxRanges ranges, overlapping ranges) is ignored as RFC 9110 §14.2 allows:
// the caller serves the whole file with 200. So is any Range of an empty
// file. A well-formed set none of whose
// ranges is satisfiable is allowed, so that ServeContent answers 416.
func allowRange(h string, size int64) bool {
	if h == "" {
		return true
	}
	if size == 0 {
		// Nothing to range over (ServeContent would answer a suffix
		// range of an empty file with a 206 of "bytes 0--1/0").
		return false
	}
	rs, ok := parseRanges(h, size)
	if !ok {
		return false
	}
	slices.SortFunc(rs, func(a, b byteRange) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	var total int64
	for i, r := range rs {
		if i > 0 && r.start < rs[i-1].start+rs[i-1].length {
			return false // overlaps the previous range
		}
		total += r.length
	}
	return total <= size
}

// parseRanges parses h strictly and resolves it against a file of size bytes
// the way net/http's ServeContent does: a range starting at or past the end
// is unsatisfiable and dropped, a last position past the end is clipped, and
// a suffix longer than the file is the whole file. Empty list elements are
// skipped. ok is false for anything but "bytes=" followed by at most
// maxRanges range specs of the forms first-last, first- and -suffix, with
// decimal digits only, first ≤ last and suffix > 0, and optional spaces or
// tabs around the commas. Parsing stops at the first error, so its cost is
// bounded by maxRanges specs whatever the header's length.
func parseRanges(h string, size int64) (rs []byteRange, ok bool) {
	set, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return nil, false
	}
	specs := 0
	for elem := range strings.SplitSeq(set, ",") {
		elem = strings.Trim(elem, " \t")
		if elem == "" {
			continue
		}
		if specs++; specs > maxRanges {
			return nil, false
		}
		first, last, ok := strings.Cut(elem, "-")
		if !ok {
			return nil, false
		}
		if first == "" { // -suffix
			n, ok := parseDigits(last)
			if !ok || n == 0 {
				return nil, false
			}
			n = min(n, size)
			if n > 0 {
				rs = append(rs, byteRange{start: size - n, length: n})
			}
			continue
		}
		start, ok := parseDigits(first)
		if !ok {
			return nil, false
		}
		end := size - 1
		if last != "" {
			e, ok := parseDigits(last)
			if !ok || e < start {
				return nil, false
			}
			end = min(e, size-1)
		}
		if start >= size {
			continue // unsatisfiable
		}
		rs = append(rs, byteRange{start: start, length: end - start + 1})
	}
	if specs == 0 {
		return nil, false
	}
	return rs, true
}

// parseDigits parses a non-empty string of ASCII decimal digits that fits
// an int64.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
