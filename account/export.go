package account

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"

	"mellium.im/xmpp/jid"
)

// FileExporter is implemented by a Holder whose export reads best as
// several files (one per stored document) rather than one. Export calls
// ExportFiles instead of the Holder's Export: each call of create opens
// the zip entry <holder name>/<name>, name being a slash-separated
// relative path (fs.ValidPath); the writer is valid until the next call
// of create or the return of ExportFiles.
type FileExporter interface {
	ExportFiles(ctx context.Context, user jid.JID, create func(name string) (io.Writer, error)) error
}

// Export writes everything stored about username to w as a zip archive
// (the right of access and to data portability): account.json with the
// Account (never the password hash) and, for each Holder, <name>.xml with
// the Holder's own export, or the directory <name>/ holding the files of a
// FileExporter. It fails with ErrNotFound for an unknown account.
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
		if fe, ok := h.(FileExporter); ok {
			dir := h.Name() + "/"
			err := fe.ExportFiles(ctx, user, func(name string) (io.Writer, error) {
				if !fs.ValidPath(name) || name == "." {
					return nil, fmt.Errorf("invalid export file name %q", name)
				}
				return create(dir + name)
			})
			if err != nil {
				return fmt.Errorf("account: export of holder %q: %w", h.Name(), err)
			}
			continue
		}
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
