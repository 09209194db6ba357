package logredact_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"chatbx.eu/privacy/logredact"
)

// noTime drops the time attribute so that the output is reproducible.
func noTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

// A connection log whose client addresses are truncated to /24 (IPv4) and
// /48 (IPv6) before they reach the JSON handler.
func ExampleNewHandler() {
	json := slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime})
	logger := slog.New(logredact.NewHandler(json, nil))

	client := &net.TCPAddr{IP: net.ParseIP("192.0.2.77"), Port: 53211}
	logger.Info("c2s connection", "user", "alice@example.org", "remote", client)
	logger.Info("c2s connection", "user", "bob@example.org", "remote", "[2001:db8:1:2::3]:40000")
	// Output:
	// {"level":"INFO","msg":"c2s connection","user":"alice@example.org","remote":"192.0.2.0:53211"}
	// {"level":"INFO","msg":"c2s connection","user":"bob@example.org","remote":"[2001:db8:1::]:40000"}
}

// The HTTP server's error log, written through a Scrubber: addresses inside
// the free text of net/http's messages are anonymized too.
func ExampleNewScrubber() {
	scrubber := logredact.NewScrubber(os.Stdout, nil)
	defer scrubber.Close()
	errorLog := log.New(scrubber, "", 0) // for http.Server.ErrorLog

	errorLog.Print("http: TLS handshake error from 198.51.100.23:49152: EOF")
	errorLog.Print("http2: error reading preface from client [2001:db8:aa:bb::7]:443: timeout")
	// Output:
	// http: TLS handshake error from 198.51.100.0:49152: EOF
	// http2: error reading preface from client [2001:db8:aa::]:443: timeout
}

// A maintenance window shows full addresses for a bounded time, with audit
// records at its start and end, and closes by itself.
func ExampleHandler_Reveal() {
	now := time.Date(2026, 11, 26, 22, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	json := slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime})
	h := logredact.NewHandler(json, &logredact.Options{Now: clock})
	logger := slog.New(h)

	if err := h.Reveal(30*time.Minute, "ticket 4711: a client cannot connect"); err != nil {
		fmt.Println(err)
	}
	logger.Info("c2s connection", "remote", "192.0.2.77:53211")
	now = now.Add(time.Hour) // the window has expired
	logger.Info("c2s connection", "remote", "192.0.2.77:53211")
	// Output:
	// {"level":"WARN","msg":"logredact: maintenance window opened, IP addresses are logged in full","reason":"ticket 4711: a client cannot connect","start":"2026-11-26T22:00:00Z","until":"2026-11-26T22:30:00Z"}
	// {"level":"INFO","msg":"c2s connection","ip_revealed":true,"remote":"192.0.2.77:53211"}
	// {"level":"WARN","msg":"logredact: maintenance window closed, IP addresses are anonymized again","reason":"ticket 4711: a client cannot connect","start":"2026-11-26T22:00:00Z","end":"2026-11-26T22:30:00Z"}
	// {"level":"INFO","msg":"c2s connection","remote":"192.0.2.0:53211"}
}

// Hourly XMPP log files, deleted once their records are older than the
// cutoff.
func ExampleOpenRotating() {
	dir, err := os.MkdirTemp("", "logs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	now := time.Date(2026, 11, 26, 22, 30, 0, 0, time.UTC)
	cfg := logredact.XMPPLogConfig(dir)
	cfg.Now = func() time.Time { return now }
	w, err := logredact.OpenRotating(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()
	logger := slog.New(logredact.NewHandler(slog.NewJSONHandler(w, nil), nil))

	logger.Info("c2s connection", "remote", "192.0.2.77:53211")
	now = now.Add(time.Hour)
	logger.Info("c2s connection", "remote", "192.0.2.78:53212")
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, n := range names {
		fmt.Println(filepath.Base(n))
	}

	now = now.Add(24 * time.Hour)
	removed, err := w.ExpireOld(context.Background())
	fmt.Println("expired:", removed, err)
	// Output:
	// xmpp-2026-11-26T22.log
	// xmpp-2026-11-26T23.log
	// expired: 2 <nil>
}
