package upload_test

import (
	"encoding/xml"
	"errors"
	"testing"
	"time"

	"chatbx.eu/privacy/internal/apitest"
	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

// maxExports bounds the package's top-level exported names. Each one is
// needed by a server (examples/server wires NewService, the two stores and
// Handle), a store implementation or uploadtest (MetaStore, Record, State,
// the store errors), or a server not built on mellium's mux (ParseRequest,
// SlotXML, HandleRequests). Grant, ServeGranted and EraseOwner (+3) serve
// slots that Prosody or ejabberd granted (cmd/uploadd): the owner of such a
// file may be a key that is not a JID. A new one replaces an old one or
// raises this bound with a reason.
const maxExports = 35

func TestExportCount(t *testing.T) { apitest.ExportCount(t, ".", maxExports) }

// TestNamingScheme holds the names shared by the library's packages: every
// constructor refuses an unusable configuration with an error wrapping
// ErrConfig (never a panic), bad input wraps ErrBadRequest, and struct
// errors reach their sentinel through Unwrap.
func TestNamingScheme(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"NewService nil stores", func() error {
			_, err := upload.NewService(nil, nil, upload.Config{BaseURL: "https://upload.example.org"})
			return err
		}, upload.ErrConfig},
		{"NewService http BaseURL", func() error {
			_, err := upload.NewService(uploadtest.NewMemMeta(), uploadtest.NewMemBlobs(), upload.Config{BaseURL: "http://upload.example.org"})
			return err
		}, upload.ErrConfig},
		{"NewService short key", func() error {
			_, err := upload.NewService(uploadtest.NewMemMeta(), uploadtest.NewMemBlobs(), upload.Config{BaseURL: "https://upload.example.org", Key: []byte("short")})
			return err
		}, upload.ErrConfig},
		{"NewBoltMetaStore nil database", func() error {
			_, err := upload.NewBoltMetaStore(nil)
			return err
		}, upload.ErrConfig},
		{"NewFSBlobStore no directory", func() error {
			_, err := upload.NewFSBlobStore("")
			return err
		}, upload.ErrConfig},
		{"ParseRequest without size", func() error {
			_, err := upload.ParseRequest(xml.StartElement{
				Name: xml.Name{Space: upload.NS, Local: "request"},
				Attr: []xml.Attr{{Name: xml.Name{Local: "filename"}, Value: "a.txt"}},
			})
			return err
		}, upload.ErrBadRequest},
		{"TooLargeError", func() error { return &upload.TooLargeError{Max: 1} }, upload.ErrTooLarge},
		{"QuotaError", func() error { return &upload.QuotaError{Retry: time.Unix(0, 0)} }, upload.ErrQuota},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want one wrapping %v", err, tc.want)
			}
		})
	}
	if errors.Unwrap(&upload.TooLargeError{}) != upload.ErrTooLarge || errors.Unwrap(&upload.QuotaError{}) != upload.ErrQuota {
		t.Error("a struct error does not Unwrap to its sentinel")
	}
}
