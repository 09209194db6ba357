package logredact_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"chatbx.eu/privacy/logredact"
)

func TestRevealClosesByItself(t *testing.T) {
	clk := newClock()
	h, buf := newJSON(t, &logredact.Options{Now: clk.Now})
	log := slog.New(h)
	bound := log.With("bound", "192.0.2.10")

	bound.Info("before", "ip", "192.0.2.1")
	if err := h.Reveal(2*time.Hour, "ticket 42: debugging a routing loop"); err != nil {
		t.Fatal(err)
	}
	if _, open := h.Revealing(); !open {
		t.Error("Revealing() = false during the window")
	}
	clk.Advance(time.Hour)
	bound.Info("during", "ip", "192.0.2.1")
	clk.Advance(time.Hour) // exactly at the end: closed
	bound.Info("after", "ip", "192.0.2.1")
	clk.Advance(time.Hour)
	bound.Info("later", "ip", "192.0.2.1")

	lines := parseLines(t, buf)
	var msgs []string
	for _, m := range lines {
		msgs = append(msgs, m["msg"].(string))
	}
	want := []string{"before", logredact.AuditRevealStart, "during", logredact.AuditRevealEnd, "after", "later"}
	if strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Fatalf("records = %q, want %q", msgs, want)
	}
	start, during, end, after := lines[1], lines[2], lines[3], lines[4]
	if start["reason"] != "ticket 42: debugging a routing loop" || start["level"] != "WARN" {
		t.Errorf("start record = %v", start)
	}
	if start["until"] != "2026-11-27T01:00:00Z" {
		t.Errorf("start until = %v", start["until"])
	}
	if during["ip"] != "192.0.2.1" || during["bound"] != "192.0.2.10" || during["ip_revealed"] != true {
		t.Errorf("during the window: %v", during)
	}
	if end["reason"] != start["reason"] || end["end"] != "2026-11-27T01:00:00Z" || end["time"] != "2026-11-27T01:00:00Z" {
		t.Errorf("end record = %v", end)
	}
	for _, m := range []map[string]any{lines[0], after, lines[5]} {
		if m["ip"] != "192.0.2.0" || m["bound"] != "192.0.2.0" {
			t.Errorf("outside the window: %v", m)
		}
		if _, ok := m["ip_revealed"]; ok {
			t.Errorf("marker outside the window: %v", m)
		}
	}
	if _, open := h.Revealing(); open {
		t.Error("Revealing() = true after the window")
	}
}

func TestRevealLimits(t *testing.T) {
	clk := newClock()
	tests := []struct {
		name   string
		max    time.Duration
		d      time.Duration
		reason string
		want   error
	}{
		{"default cap 24h ok", 0, 24 * time.Hour, "r", nil},
		{"default cap exceeded", 0, 24*time.Hour + time.Second, "r", logredact.ErrRevealTooLong},
		{"custom cap", time.Hour, 2 * time.Hour, "r", logredact.ErrRevealTooLong},
		{"zero duration", 0, 0, "r", logredact.ErrBadRequest},
		{"negative duration", 0, -time.Hour, "r", logredact.ErrBadRequest},
		{"no reason", 0, time.Hour, "  ", logredact.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, buf := newJSON(t, &logredact.Options{Now: clk.Now, MaxReveal: tt.max})
			err := h.Reveal(tt.d, tt.reason)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Reveal = %v, want %v", err, tt.want)
			}
			if tt.want != nil {
				if buf.Len() != 0 {
					t.Errorf("a refused Reveal wrote %s", buf)
				}
				slog.New(h).Info("x", "ip", "192.0.2.1")
				if !strings.Contains(buf.String(), `"ip":"192.0.2.0"`) {
					t.Errorf("a refused Reveal revealed: %s", buf)
				}
			}
		})
	}
}

func TestConcealEndsEarlyAndLogsOnce(t *testing.T) {
	clk := newClock()
	h, buf := newJSON(t, &logredact.Options{Now: clk.Now})
	if err := h.Reveal(time.Hour, "maintenance"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	if err := h.Conceal(); err != nil {
		t.Fatal(err)
	}
	if err := h.Conceal(); err != nil {
		t.Fatal(err)
	}
	slog.New(h).Info("x", "ip", "192.0.2.1")
	lines := parseLines(t, buf)
	if len(lines) != 3 || lines[1]["msg"] != logredact.AuditRevealEnd || lines[1]["end"] != "2026-11-26T23:10:00Z" {
		t.Fatalf("records = %v", lines)
	}
	if lines[2]["ip"] != "192.0.2.0" {
		t.Errorf("after Conceal: %v", lines[2])
	}
}

func TestConcealLogsExpiredWindow(t *testing.T) {
	// The window expired with no record after it: Conceal (at shutdown)
	// still writes the end, with the real end time.
	clk := newClock()
	h, buf := newJSON(t, &logredact.Options{Now: clk.Now})
	if err := h.Reveal(time.Hour, "maintenance"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Hour)
	if err := h.Conceal(); err != nil {
		t.Fatal(err)
	}
	lines := parseLines(t, buf)
	if len(lines) != 2 || lines[1]["msg"] != logredact.AuditRevealEnd || lines[1]["end"] != "2026-11-27T00:00:00Z" {
		t.Fatalf("records = %v", lines)
	}
}

func TestRevealAgainReplacesWindow(t *testing.T) {
	clk := newClock()
	h, buf := newJSON(t, &logredact.Options{Now: clk.Now})
	_ = h.Reveal(time.Hour, "first")
	clk.Advance(time.Minute)
	if err := h.Reveal(time.Hour, "second"); err != nil {
		t.Fatal(err)
	}
	lines := parseLines(t, buf)
	if len(lines) != 3 || lines[1]["msg"] != logredact.AuditRevealEnd || lines[1]["reason"] != "first" || lines[2]["reason"] != "second" {
		t.Fatalf("records = %v", lines)
	}
}

func TestRevealReasonIsAnonymized(t *testing.T) {
	clk := newClock()
	h, buf := newJSON(t, &logredact.Options{Now: clk.Now})
	if err := h.Reveal(time.Hour, "why does 192.0.2.77 fail?"); err != nil {
		t.Fatal(err)
	}
	_ = h.Conceal()
	if strings.Contains(buf.String(), "192.0.2.77") {
		t.Errorf("audit records hold the address: %s", buf)
	}
	for _, m := range parseLines(t, buf) {
		if m["reason"] != "why does 192.0.2.0 fail?" {
			t.Errorf("reason = %v", m["reason"])
		}
	}
}
