package main

import (
	"io"
	"net/http"
	"time"

	"chatbx.eu/privacy/examples/server/internal/web"
)

// Limits of the HTTPS listener. There is deliberately no ReadTimeout or
// WriteTimeout: they bound a whole request or answer by a fixed time, which
// would cut large uploads and downloads on slow links. Instead every body
// has a deadline of its own (bodyDeadline, web's FormTimeout), and uploads
// and downloads must keep a minimum rate (upload.Config.MinRate).
const (
	httpMaxHeaderBytes    = 16 << 10 // request line and headers; net/http allows 4 KiB of slack
	httpReadHeaderTimeout = 10 * time.Second
	httpIdleTimeout       = 2 * time.Minute
	// defaultBodyTimeout bounds the arrival of any request body that no
	// handler takes over: forms, and whatever net/http reads of an unread
	// body after the answer so as to reuse the connection.
	defaultBodyTimeout = web.DefaultFormTimeout
)

// bodyTimeout is the time a request body (a form) has to arrive.
func (srv *Server) bodyTimeout() time.Duration {
	if d := srv.cfg.httpBodyTimeout; d > 0 {
		return d
	}
	return defaultBodyTimeout
}

// newHTTPServer is the HTTPS server over h with the limits above.
func (srv *Server) newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           bodyDeadline(h, srv.bodyTimeout()),
		ErrorLog:          srv.errorLog,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
	}
}

// bodyDeadline gives every request that has a body a read deadline d ahead
// (http.ResponseController), cleared when the body has been read to its end.
// A handler may set its own deadline instead (the upload service keeps one
// moving with the transfer rate). So a body that stops arriving holds its
// connection for at most d, also when the handler does not read it and
// net/http reads on after the answer to reuse the connection.
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &clearAtEOF{ReadCloser: r.Body, rc: rc}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// clearAtEOF clears the connection's read deadline when the body ends, so
// that the handler's work after reading (an export, committing an upload)
// is not cut by it.
type clearAtEOF struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (c *clearAtEOF) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err == io.EOF && !c.done {
		c.done = true
		_ = c.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
