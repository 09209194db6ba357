package retention_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"chatbx.eu/privacy/retention"
)

// encodings returns marker as it could appear in a file: plain, hex, and
// the alignment-independent middle of its base64 encodings.
func encodings(marker string) [][]byte {
	out := [][]byte{[]byte(marker), []byte(hex.EncodeToString([]byte(marker))), []byte(strings.ToUpper(hex.EncodeToString([]byte(marker))))}
	for k := range 3 {
		src := append(make([]byte, k), marker...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(src)
			out = append(out, []byte(s[(k+2)/3*4:(k+len(marker))/3*4]))
		}
	}
	return out
}

// found reports which markers occur, in any encoding, in any file in dir.
func found(t *testing.T, dir string, markers ...string) []string {
	t.Helper()
	var hit []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markers {
			for _, f := range encodings(m) {
				if bytes.Contains(raw, f) {
					hit = append(hit, e.Name()+": "+m)
					break
				}
			}
		}
	}
	return hit
}

// archive is a minimal bbolt-backed store: messages keyed by time under a
// bucket per user, with Expire and Erase as the real stores have.
type archive struct{ db, accounts *bolt.DB }

func (a archive) add(user string, at time.Time, body string) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("archive"))
		if err != nil {
			return err
		}
		if b, err = b.CreateBucketIfNotExists([]byte(user)); err != nil {
			return err
		}
		k := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
		return b.Put(k, []byte(body))
	})
}

func (a archive) Expire(_ context.Context, before time.Time) (int, error) {
	n := 0
	err := a.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket([]byte("archive"))
		if root == nil {
			return nil
		}
		return root.ForEachBucket(func(user []byte) error {
			c := root.Bucket(user).Cursor()
			for k, _ := c.First(); k != nil && int64(binary.BigEndian.Uint64(k)) < before.UnixNano(); k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
				n++
			}
			return nil
		})
	})
	return n, err
}

func (a archive) erase(user string) error {
	err := a.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("archive")).DeleteBucket([]byte(user))
	})
	if err != nil {
		return err
	}
	return a.accounts.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("accounts")).Delete([]byte(user))
	})
}

func TestPurgeLeavesNoResidue(t *testing.T) {
	// Two files in one data directory, as a server keeps them.
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "mam.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	accounts, err := bolt.Open(filepath.Join(dir, "account.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer accounts.Close()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := archive{db, accounts}

	const (
		alice     = "alice-7f3a9c@example.org"
		aliceBody = "alice-body-5b1e77d0"
		aliceTok  = "alice-token-c0ffee42"
		bob       = "bob-21d4e8@example.org"
		bobOld    = "bob-old-body-9a8b7c6d" // older than the lifetime: expires
		bobNew    = "bob-new-body-1f2e3d4c"
	)
	err = accounts.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("accounts"))
		if err != nil {
			return err
		}
		if err := b.Put([]byte(alice), []byte(base64.StdEncoding.EncodeToString([]byte(aliceTok)))); err != nil {
			return err
		}
		return b.Put([]byte(bob), []byte("bob's hash"))
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		at := now.Add(-time.Duration(50-i) * time.Hour)
		must(t, a.add(alice, at, fmt.Sprintf("%s %d %s", aliceBody, i, strings.Repeat("x", i*100))))
		must(t, a.add(bob, at.Add(-100*time.Hour), fmt.Sprintf("%s %d", bobOld, i)))
		must(t, a.add(bob, at, fmt.Sprintf("%s %d", bobNew, i)))
	}
	must(t, a.erase(alice))
	for _, m := range []string{aliceBody, alice, aliceTok, bobOld} {
		if len(found(t, dir, m)) == 0 {
			t.Fatalf("before the purge the files should still hold %s: the scan is broken", m)
		}
	}

	s, err := retention.NewScheduler(retention.Config{
		Jobs: []retention.Job{
			{Name: "mam", Data: "archived messages", MaxAge: 72 * time.Hour, Expirer: a},
			retention.PurgeJob("purge-mam", db, 0),
			retention.PurgeJob("purge-account", accounts, 0),
		},
		Logger: discard(),
		Now:    func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	reports, err := s.RunOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if reports[0].Removed != 50 || reports[1].Removed == 0 || reports[2].Removed == 0 {
		t.Fatalf("reports = %+v", reports)
	}
	if hit := found(t, dir, aliceBody, alice, aliceTok, bobOld); len(hit) > 0 {
		t.Fatalf("after the purge the data directory still holds %v", hit)
	}
	// Bob's live data is intact and readable.
	var n int
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("archive")).Bucket([]byte(bob)).ForEach(func(_, v []byte) error {
			if !strings.HasPrefix(string(v), bobNew) {
				return fmt.Errorf("unexpected %q", v)
			}
			n++
			return nil
		})
	})
	if err != nil || n != 50 {
		t.Fatalf("bob's archive: %d messages, %v", n, err)
	}
	if hit := found(t, dir, bob, bobNew); len(hit) != 3 { // bob in both files, his messages in mam.db
		t.Fatalf("bob's live data missing from the file: %v", hit)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPurgeJob(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "mam.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j := retention.PurgeJob("purge-mam", db, time.Minute)
	if j.Name != "purge-mam" || j.Interval != time.Minute || j.MaxAge != 0 || !strings.Contains(j.Data, "mam.db") {
		t.Fatalf("job = %+v", j)
	}
	if strings.Contains(j.Data, string(filepath.Separator)) {
		t.Fatalf("job data %q reveals the directory", j.Data)
	}
	if _, err := j.Expirer.Expire(t.Context(), time.Time{}); err != nil {
		t.Fatal(err)
	}
}

func TestRunJob(t *testing.T) {
	boom := errors.New("boom")
	var ran []string
	mk := func(name string, err error) retention.Job {
		return retention.Job{Name: name, Expirer: retention.ExpirerFunc(func(context.Context, time.Time) (int, error) {
			ran = append(ran, name)
			return 1, err
		})}
	}
	s := newScheduler(t, mk("a", nil), mk("b", boom))
	if r, err := s.RunJob(t.Context(), "a"); err != nil || r.Job != "a" || r.Removed != 1 {
		t.Fatalf("RunJob(a) = %+v, %v", r, err)
	}
	if _, err := s.RunJob(t.Context(), "b"); !errors.Is(err, boom) {
		t.Fatalf("RunJob(b) = %v", err)
	}
	if _, err := s.RunJob(t.Context(), "c"); !errors.Is(err, retention.ErrUnknownJob) {
		t.Fatalf("RunJob(c) = %v", err)
	}
	if strings.Join(ran, ",") != "a,b" {
		t.Fatalf("ran %v", ran)
	}
}
