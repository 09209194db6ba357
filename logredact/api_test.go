package logredact_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"chatbx.eu/privacy/internal/apitest"
	"chatbx.eu/privacy/logredact"
)

// maxExports bounds the package's top-level exported names. Each one is
// needed by a server (examples/server wires NewHandler, NewScrubber,
// OpenRotating with the two presets, and Options), by a server that
// pseudonymizes (Mode, KeyRing), by monitoring that watches the
// maintenance window's audit records (AuditRevealStart, AuditRevealEnd), or
// by a caller branching on an error. The ipcrypt ciphers stay unexported.
// A new one replaces an old one or raises this bound with a reason.
const maxExports = 22

func TestExportCount(t *testing.T) { apitest.ExportCount(t, ".", maxExports) }

// TestNamingScheme holds the names shared by the library's packages: an
// unusable configuration wraps ErrConfig, unusable arguments wrap
// ErrBadRequest.
func TestNamingScheme(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"OpenRotating without a directory", func() error {
			_, err := logredact.OpenRotating(logredact.RotateConfig{})
			return err
		}, logredact.ErrConfig},
		{"OpenRotating with a path in Name", func() error {
			_, err := logredact.OpenRotating(logredact.RotateConfig{Dir: dir, Name: "a/b"})
			return err
		}, logredact.ErrConfig},
		{"Reveal for no time", func() error {
			return logredact.NewHandler(slog.DiscardHandler, nil).Reveal(0, "maintenance")
		}, logredact.ErrBadRequest},
		{"Reveal without a reason", func() error {
			return logredact.NewHandler(slog.DiscardHandler, nil).Reveal(time.Minute, " ")
		}, logredact.ErrBadRequest},
		{"EraseLines of the empty string", func() error {
			r, err := logredact.OpenRotating(logredact.RotateConfig{Dir: dir})
			if err != nil {
				return err
			}
			_, err = r.EraseLines(context.Background(), "")
			return err
		}, logredact.ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.want)
			}
		})
	}
}
