package upload

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"mellium.im/xmpp/jid"
)

// ExportEntry describes one file in an export's manifest: a tool that reads
// the zip Export writes (a provider's data-portability page, a user's
// archive viewer) decodes manifest.json into a []ExportEntry.
type ExportEntry struct {
	Path        string    `json:"path"` // the entry holding the contents in the zip
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type,omitempty"`
	Size        int64     `json:"size"`
	Uploaded    time.Time `json:"uploaded"`
	Expires     time.Time `json:"expires"`
	URL         string    `json:"url"`
}

// Export writes all of a user's stored files to w as a zip archive:
// "manifest.json" (a JSON array of ExportEntry, oldest first) followed by
// one entry "files/<id>/<filename>" per file holding its exact contents.
// Contents are streamed, never buffered whole. Slots not yet used are not
// files and are not exported; expired files are not either.
func (s *Service) Export(ctx context.Context, user jid.JID, w io.Writer) error {
	recs, err := s.meta.ByOwner(ctx, user.Bare().String())
	if err != nil {
		return fmt.Errorf("upload: export: %w", err)
	}
	now := s.now()
	recs = slices.DeleteFunc(recs, func(r Record) bool {
		return r.State != StateStored || !now.Before(s.expiry(r))
	})
	slices.SortFunc(recs, func(a, b Record) int { return a.Created.Compare(b.Created) })
	entries := make([]ExportEntry, len(recs))
	for i, r := range recs {
		entries[i] = ExportEntry{
			Path:        "files/" + r.ID + "/" + r.Filename,
			Filename:    r.Filename,
			ContentType: r.ContentType,
			Size:        r.Size,
			Uploaded:    r.Created.UTC(),
			Expires:     s.expiry(r).UTC(),
			URL:         s.fileURL(r),
		}
	}
	zw := zip.NewWriter(w)
	mw, err := zw.Create("manifest.json")
	if err != nil {
		return fmt.Errorf("upload: export: %w", err)
	}
	enc := json.NewEncoder(mw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(entries); err != nil {
		return fmt.Errorf("upload: export: %w", err)
	}
	for i, r := range recs {
		if err := s.exportOne(ctx, zw, entries[i], r); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("upload: export: %w", err)
	}
	return nil
}

func (s *Service) exportOne(ctx context.Context, zw *zip.Writer, e ExportEntry, r Record) error {
	rc, _, err := s.blobs.Open(ctx, r.ID)
	if errors.Is(err, ErrNotFound) {
		return nil // deleted concurrently (expiry or erasure)
	}
	if err != nil {
		return fmt.Errorf("upload: export: %w", err)
	}
	defer rc.Close()
	fw, err := zw.CreateHeader(&zip.FileHeader{Name: e.Path, Method: zip.Store, Modified: e.Uploaded})
	if err != nil {
		return fmt.Errorf("upload: export: %w", err)
	}
	if _, err := io.Copy(fw, rc); err != nil {
		return fmt.Errorf("upload: export: %w", err)
	}
	return nil
}
