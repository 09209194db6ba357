package account_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"chatbx.eu/privacy/account"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// fileHolder keeps one file per user in a directory, so its state survives
// the process.
type fileHolder struct {
	name, dir string
	crash     bool // exit the process in Erase, before erasing
}

func (h fileHolder) Name() string { return h.name }

func (h fileHolder) path(user jid.JID) string { return filepath.Join(h.dir, h.name, user.String()) }

func (h fileHolder) put(t *testing.T, user string) {
	t.Helper()
	j := jid.MustParse(user)
	if err := os.MkdirAll(filepath.Dir(h.path(j)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.path(j), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (h fileHolder) has(user string) bool {
	_, err := os.Stat(h.path(jid.MustParse(user)))
	return err == nil
}

func (h fileHolder) Export(_ context.Context, user jid.JID, w io.Writer) error {
	b, err := os.ReadFile(h.path(user))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (h fileHolder) Erase(_ context.Context, user jid.JID) error {
	if h.crash {
		os.Exit(3) // the process dies in the middle of Delete
	}
	err := os.Remove(h.path(user))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func crashHolders(dir string, crash bool) []account.Holder {
	return []account.Holder{
		fileHolder{name: "mam", dir: dir},
		fileHolder{name: "upload", dir: dir, crash: crash},
		fileHolder{name: "roster", dir: dir},
	}
}

func openManager(t *testing.T, path, dir string, crash bool) (*account.Manager, account.Store, *bolt.DB) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	store, err := account.NewBoltStore(db)
	if err != nil {
		t.Fatal(err)
	}
	m, err := account.NewManager(store, account.Config{Params: fast, Domain: "example.org", Holders: crashHolders(dir, crash)})
	if err != nil {
		t.Fatal(err)
	}
	return m, store, db
}

// TestCrashDuringDelete kills a process in the middle of Delete (in the
// second of three Holders), then restarts on the same database and checks
// that Resume leaves nothing of the user and does not touch other users.
func TestCrashDuringDelete(t *testing.T) {
	if os.Getenv("ACCOUNT_CRASH_CHILD") == "1" {
		m, _, _ := openManager(t, os.Getenv("ACCOUNT_CRASH_DB"), os.Getenv("ACCOUNT_CRASH_DIR"), true)
		err := m.Delete(context.Background(), "alice")
		t.Fatalf("Delete returned %v instead of dying in the second Holder", err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "account.db")
	m, _, db := openManager(t, path, dir, false)
	mustRegister(t, m, "alice", "lilac-sky-1")
	mustRegister(t, m, "bob", "lilac-sky-1")
	holders := crashHolders(dir, false)
	for _, h := range holders {
		for _, u := range []string{"alice@example.org", "bob@example.org"} {
			h.(fileHolder).put(t, u)
		}
	}
	db.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringDelete$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ACCOUNT_CRASH_CHILD=1", "ACCOUNT_CRASH_DB="+path, "ACCOUNT_CRASH_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child: %v, want exit status 3; output:\n%s", err, out)
	}

	// The crash left a disabled account mid-way.
	m, store, db := openManager(t, path, dir, false)
	defer db.Close()
	r, err := store.Get(ctx, "alice")
	if err != nil || !r.Deleting {
		t.Fatalf("after the crash: %+v, %v; want a record marked Deleting", r, err)
	}
	if err := m.Authenticate(ctx, "k", "alice", "lilac-sky-1"); err != account.ErrAuth {
		t.Fatalf("login between crash and Resume = %v, want ErrAuth", err)
	}
	if h := holders[0].(fileHolder); h.has("alice@example.org") {
		t.Fatal("first holder did not erase before the crash")
	}
	if h := holders[2].(fileHolder); !h.has("alice@example.org") {
		t.Fatal("third holder erased before the crash: the test did not crash where intended")
	}

	if err := m.Resume(ctx); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	for _, h := range holders {
		if h.(fileHolder).has("alice@example.org") {
			t.Errorf("holder %s still has alice's data after Resume", h.Name())
		}
		if !h.(fileHolder).has("bob@example.org") {
			t.Errorf("holder %s lost bob's data", h.Name())
		}
	}
	if _, err := store.Get(ctx, "alice"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("account record after Resume: %v", err)
	}
	if list, _ := store.Erasures(ctx); len(list) != 0 {
		t.Fatalf("journal after Resume: %+v", list)
	}
	if err := m.Register(ctx, "k", "alice", "lilac-sky-1"); !errors.Is(err, account.ErrExists) {
		t.Fatalf("re-register after Resume = %v, want ErrExists (tombstone)", err)
	}
	if err := m.Authenticate(ctx, "k", "bob", "lilac-sky-1"); err != nil {
		t.Fatalf("bob after Resume: %v", err)
	}
	if err := m.Resume(ctx); err != nil {
		t.Fatalf("second Resume: %v", err)
	}
}
