package main

import (
	"bytes"
	"log/slog"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp"
)

// TestFailureLogBudget: past negLinesPerSecond failed negotiations a
// second, failures are counted in a summary line instead of a line each;
// a new second gets lines again.
func TestFailureLogBudget(t *testing.T) {
	var buf bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&buf, nil))
	l := newFailureLog(lg, lg)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	ip := netip.MustParseAddr("192.0.2.7")
	for range negLinesPerSecond + 5 {
		l.negotiationFailed("auth", "not-authorized", ip)
	}
	now = now.Add(time.Second)
	l.negotiationFailed("tls", "connection-closed", ip)
	l.stop()
	out := buf.String()
	if n := strings.Count(out, `msg="negotiation failed" stage=auth condition=not-authorized`); n != negLinesPerSecond {
		t.Errorf("%d lines in the first second, want %d:\n%s", n, negLinesPerSecond, out)
	}
	// The summary log writes the first overflow at once, the rest later.
	counted := 0
	for _, m := range regexp.MustCompile(`auth/not-authorized=(\d+)`).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		counted += n
	}
	if counted != 5 {
		t.Errorf("%d failures counted past the budget, want 5:\n%s", counted, out)
	}
	if !strings.Contains(out, `msg="negotiation failed" stage=tls condition=connection-closed`) {
		t.Errorf("no line in the next second:\n%s", out)
	}
}

// TestNegotiationStage names the step from the session state.
func TestNegotiationStage(t *testing.T) {
	for _, tc := range []struct {
		state  xmpp.SessionState
		header bool
		want   string
	}{
		{0, false, "stream"},
		{0, true, "starttls"},
		{xmpp.Secure, false, "tls"},
		{xmpp.Secure, true, "auth"},
		{xmpp.Secure | xmpp.Authn, true, "bind"},
	} {
		if got := negotiationStage(tc.state, tc.header); got != tc.want {
			t.Errorf("negotiationStage(%v, %v) = %s, want %s", tc.state, tc.header, got, tc.want)
		}
	}
}
