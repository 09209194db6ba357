package account_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"chatbx.eu/privacy/account"
	"mellium.im/xmpp/jid"
)

// filesHolder exports one file per entry of files, under the names given.
type filesHolder struct {
	*memHolder
	files []string
}

func (h filesHolder) ExportFiles(_ context.Context, user jid.JID, create func(string) (io.Writer, error)) error {
	for _, name := range h.files {
		w, err := create(name)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, "<f>"+user.String()+" "+name+"</f>"); err != nil {
			return err
		}
	}
	return nil
}

var _ account.FileExporter = filesHolder{}

// TestExportFiles: a FileExporter's files land under <holder name>/ in
// the zip, its Export is not called, and a file name that could leave that
// directory fails the export.
func TestExportFiles(t *testing.T) {
	priv := filesHolder{newHolder("private"), []string{"storage%3Abookmarks.xml", "sub/dir.xml"}}
	e := newEnv(t, account.Config{Holders: []account.Holder{newHolder("mam"), priv}})
	e.seed(t, "alice")
	var buf bytes.Buffer
	if err := e.m.Export(ctx, "alice", &buf); err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
		if strings.HasPrefix(f.Name, "private/") {
			r, _ := f.Open()
			b, _ := io.ReadAll(r)
			if want := "<f>alice@example.org " + strings.TrimPrefix(f.Name, "private/") + "</f>"; string(b) != want {
				t.Errorf("%s = %q, want %q", f.Name, b, want)
			}
		}
	}
	if want := []string{"account.json", "mam.xml", "private/storage%3Abookmarks.xml", "private/sub/dir.xml"}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	for _, bad := range []string{"../mam.xml", "/abs.xml", "a/../../b", "", "."} {
		h := filesHolder{newHolder("private"), []string{bad}}
		e := newEnv(t, account.Config{Holders: []account.Holder{h}})
		e.seed(t, "alice")
		if err := e.m.Export(ctx, "alice", io.Discard); err == nil {
			t.Errorf("export file name %q accepted", bad)
		}
	}
}
