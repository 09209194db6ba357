package mam

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"chatbx.eu/privacy/internal/xmlutil"
	"mellium.im/xmpp/paging"
)

// parseRSM parses an XEP-0059 <set/> (its start element has been read) into
// req: max (capped), after, before (empty = last page) and index (only 0,
// the first page, is supported: out-of-order paging is
// feature-not-implemented as XEP-0059 says).
func parseRSM(r xml.TokenReader, req *request, c Config) error {
	var sawAfter, sawBefore, sawMax bool
	for se, err := range xmlutil.Children(r) {
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if se.Name.Space != paging.NS {
			if err := skip(r); err != nil {
				return err
			}
			continue
		}
		v, err := readText(r)
		if err != nil {
			return err
		}
		v = strings.TrimSpace(v)
		switch se.Name.Local {
		case "max":
			if sawMax {
				return fmt.Errorf("%w: max repeated", ErrBadRequest)
			}
			sawMax = true
			n, err := strconv.Atoi(v)
			var ne *strconv.NumError
			switch {
			case errors.As(err, &ne) && ne.Err == strconv.ErrRange && !strings.HasPrefix(v, "-"):
				n = c.maxPageSize() // absurdly large: the server's cap
			case err != nil || n < 0:
				return fmt.Errorf("%w: max is not a non-negative integer", ErrBadRequest)
			}
			if n == 0 {
				req.CountOnly = true
				n = 1
			}
			req.Query.Max = min(n, c.maxPageSize())
		case "after":
			if sawAfter {
				return fmt.Errorf("%w: after repeated", ErrBadRequest)
			}
			sawAfter = true
			if v == "" || len(v) > maxIDLen {
				return fmt.Errorf("%w: bad after", ErrBadRequest)
			}
			req.Query.After = v
		case "before":
			if sawBefore {
				return fmt.Errorf("%w: before repeated", ErrBadRequest)
			}
			sawBefore = true
			if len(v) > maxIDLen {
				return fmt.Errorf("%w: bad before", ErrBadRequest)
			}
			req.Query.Before = v
			req.Query.Last = v == ""
		case "index":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: index is not a non-negative integer", ErrBadRequest)
			}
			if n != 0 {
				return fmt.Errorf("%w: rsm index", ErrUnsupported)
			}
		default:
			return fmt.Errorf("%w: unknown rsm element", ErrBadRequest)
		}
	}
	if sawAfter && sawBefore {
		return fmt.Errorf("%w: both after and before", ErrBadRequest)
	}
	return nil
}
