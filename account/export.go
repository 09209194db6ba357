package account

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// Export writes everything stored about username to w as a zip archive
// (the right of access and to data portability): account.json with the
// Account (never the password hash) and, for each Holder, <name>.xml with
// the Holder's own export. It fails with ErrNotFound for an unknown account.
// On any other error the output is incomplete and must be discarded.
func (m *Manager) Export(ctx context.Context, username string, w io.Writer) error {
	a, err := m.Get(ctx, username)
	if err != nil {
		return err
	}
	user, err := m.userJID(a.Username)
	if err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	now := m.cfg.Now()
	z := zip.NewWriter(w)
	create := func(name string) (io.Writer, error) {
		return z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: now})
	}
	f, err := create("account.json")
	if err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(a); err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	for _, h := range m.holders {
		f, err := create(h.Name() + ".xml")
		if err != nil {
			return fmt.Errorf("account: export: %w", err)
		}
		if err := h.Export(ctx, user, f); err != nil {
			return fmt.Errorf("account: export of holder %q: %w", h.Name(), err)
		}
	}
	if err := z.Close(); err != nil {
		return fmt.Errorf("account: export: %w", err)
	}
	return nil
}
