package upload

import (
	"io"
	"math"
	"net/http"
	"time"
)

// rateDeadline enforces Config.MinRate on one direction of a connection: it
// keeps the deadline set by set a window ahead for as long as at least min
// bytes move per window.
type rateDeadline struct {
	set    func(time.Time) error // http.ResponseController.SetReadDeadline or SetWriteDeadline
	now    func() time.Time      // the wall clock of the connection's deadlines
	min    int64
	window time.Duration
	moved  int64 // bytes since the deadline last moved
	on     bool  // deadlines are enforced
}

// newRateDeadline sets the first deadline, a window from now. With min < 0,
// or when the ResponseWriter does not support deadlines, it does nothing.
func newRateDeadline(set func(time.Time) error, now func() time.Time, minBytes int64, window time.Duration) *rateDeadline {
	d := &rateDeadline{set: set, now: now, min: minBytes, window: window}
	if minBytes >= 0 {
		d.on = set(now().Add(window)) == nil
	}
	return d
}

// add counts n bytes moved and moves the deadline once min bytes have moved
// since it last did.
func (d *rateDeadline) add(n int) {
	if !d.on {
		return
	}
	d.moved += int64(n)
	if d.moved >= d.min {
		d.moved = 0
		_ = d.set(d.now().Add(d.window))
	}
}

// clear removes the deadline.
func (d *rateDeadline) clear() {
	if d.on {
		d.on = false
		_ = d.set(time.Time{})
	}
}

// rate returns MinRate and RateWindow with their defaults applied.
func (s *Service) rate() (int64, time.Duration) {
	minBytes, window := s.cfg.MinRate, s.cfg.RateWindow
	if minBytes == 0 {
		minBytes = defaultMinRate
	}
	if window <= 0 {
		window = defaultRateWindow
	}
	return minBytes, window
}

// rateReader is a PUT body under MinRate. At the end of the body (io.EOF)
// it removes the read deadline, so that the server's own read of the idle
// connection, which begins then, is not cut while the upload is committed.
// After any other error the deadline stays: what net/http reads of the rest
// of a refused body stays bounded.
type rateReader struct {
	r io.Reader
	d *rateDeadline
}

func (s *Service) newRateReader(w http.ResponseWriter, body io.Reader) *rateReader {
	minBytes, window := s.rate()
	rc := http.NewResponseController(w)
	return &rateReader{r: body, d: newRateDeadline(rc.SetReadDeadline, time.Now, minBytes, window)}
}

func (r *rateReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.d.add(n)
	if err == io.EOF {
		r.d.clear()
	}
	return n, err
}

// rateWriter is a GET answer under MinRate. Writes larger than MinRate are
// split so that each piece of MinRate bytes moves the deadline.
type rateWriter struct {
	http.ResponseWriter
	d *rateDeadline
}

func (s *Service) newRateWriter(w http.ResponseWriter) *rateWriter {
	minBytes, window := s.rate()
	rc := http.NewResponseController(w)
	return &rateWriter{ResponseWriter: w, d: newRateDeadline(rc.SetWriteDeadline, time.Now, minBytes, window)}
}

func (w *rateWriter) Write(p []byte) (int, error) {
	if !w.d.on || w.d.min <= 0 {
		return w.ResponseWriter.Write(p)
	}
	var written int
	for len(p) > 0 {
		chunk := p[:min(int64(len(p)), w.d.min)]
		n, err := w.ResponseWriter.Write(chunk)
		written += n
		w.d.add(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Unwrap lets http.ResponseController reach the server's ResponseWriter.
func (w *rateWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps the server's io.ReaderFrom (sendfile over plain TCP, e.g.
// behind a TLS-terminating proxy) while moving the deadline: it hands the
// source on in pieces of MinRate bytes. A *io.LimitedReader (what
// http.ServeContent passes) is unwrapped so the file underneath stays
// visible to sendfile.
func (w *rateWriter) ReadFrom(src io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(writerOnly{w}, src)
	}
	if !w.d.on || w.d.min <= 0 {
		return rf.ReadFrom(src)
	}
	inner, limit := src, int64(math.MaxInt64)
	outer, limited := src.(*io.LimitedReader)
	if limited {
		inner, limit = outer.R, outer.N
	}
	var total int64
	for limit > 0 {
		step := min(limit, w.d.min)
		n, err := rf.ReadFrom(&io.LimitedReader{R: inner, N: step})
		total += n
		limit -= n
		if limited {
			outer.N -= n
		}
		w.d.add(int(n))
		if err != nil {
			return total, err
		}
		if n < step {
			break // the source ended
		}
	}
	return total, nil
}

// writerOnly hides ReadFrom, so that io.Copy does not call it again.
type writerOnly struct{ io.Writer }
