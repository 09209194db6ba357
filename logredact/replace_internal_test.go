package logredact

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// FuzzReplaceAttr checks, for any message and string attribute, that
// Handler.ReplaceAttr in a JSONHandler writes what the Handler writes, in
// every mode and inside a window, and that the output of Truncate holds no
// address that truncation would change.
func FuzzReplaceAttr(f *testing.F) {
	f.Add("from 192.0.2.1:5222", "[2001:db8::1]:443", "198.51.100.7", uint8(0), false)
	f.Add("::ffff:1.2.3.4", "1.2.3.4.5", "2001:db8::", uint8(1), true)
	f.Add("fe80::1%eth0", "x 10.0.0.1, 10.0.0.2", "k", uint8(2), false)
	f.Fuzz(func(t *testing.T, msg, val, key string, mode uint8, window bool) {
		now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		opts := &Options{Mode: Mode(mode % 3), Now: func() time.Time { return now }}
		var viaHandler, viaReplace, textHandler, textReplace bytes.Buffer
		h := NewHandler(slog.NewJSONHandler(&viaHandler, nil), opts)
		repl := slog.NewJSONHandler(&viaReplace, &slog.HandlerOptions{ReplaceAttr: h.ReplaceAttr})
		th := NewHandler(slog.NewTextHandler(&textHandler, nil), opts)
		trepl := slog.NewTextHandler(&textReplace, &slog.HandlerOptions{ReplaceAttr: th.ReplaceAttr})
		if window {
			if err := h.Reveal(time.Hour, "fuzz"); err != nil {
				t.Fatal(err)
			}
			if err := th.Reveal(time.Hour, "fuzz"); err != nil {
				t.Fatal(err)
			}
			viaHandler.Reset()
			textHandler.Reset()
		}
		r := slog.NewRecord(now, slog.LevelInfo, msg, 0)
		r.AddAttrs(slog.String("v", val), slog.Group("g", slog.String("w", val), slog.Int(key, 1)))
		for _, hd := range []slog.Handler{h, repl, th, trepl} {
			if err := hd.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		if viaHandler.String() != viaReplace.String() {
			t.Fatalf("Handler     %sReplaceAttr %s", viaHandler.String(), viaReplace.String())
		}
		if textHandler.String() != textReplace.String() {
			t.Fatalf("text: Handler     %sReplaceAttr %s", textHandler.String(), textReplace.String())
		}
		if window || opts.Mode != Truncate {
			return
		}
		var m map[string]any
		if err := json.Unmarshal(viaReplace.Bytes(), &m); err != nil {
			t.Fatalf("bad JSON %q: %v", viaReplace.Bytes(), err)
		}
		g, _ := m["g"].(map[string]any)
		texts := []any{m["msg"], m["v"], g["w"]}
		for k := range g {
			texts = append(texts, k)
		}
		for _, s := range texts {
			str, _ := s.(string)
			for _, sp := range scan(str, nil) {
				if sp.kind != spanAddr {
					continue
				}
				a := sp.addr.WithZone("")
				if tr := truncate(a, 24, 48); tr != a {
					t.Fatalf("output holds %s in %q (from %q, %q, %q)", a, str, msg, val, key)
				}
			}
		}
	})
}
