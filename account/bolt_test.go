package account_test

import (
	"path/filepath"
	"testing"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/account/accounttest"
	bolt "go.etcd.io/bbolt"
)

func openBolt(t testing.TB, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newBoltStore(t testing.TB) *account.BoltStore {
	t.Helper()
	s, err := account.NewBoltStore(openBolt(t, filepath.Join(t.TempDir(), "account.db")))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBoltStore(t *testing.T) {
	accounttest.TestStore(t, func(t *testing.T) account.Store { return newBoltStore(t) })
}
