package boltwipe_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"

	"chatbx.eu/privacy/internal/boltwipe"
)

const crashEnv = "BOLTWIPE_CRASH_DB"

// crashChild runs in the re-executed test binary: it wipes the database
// in small transactions, reporting each one on stdout, until it is killed.
func crashChild(path string) {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	_, err = boltwipe.WipeOptions(context.Background(), db, boltwipe.Options{
		PagesPerTx: 16,
		Progress:   func(pages int) { fmt.Println("progress", pages) },
	})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println("done")
	os.Exit(0)
}

// bigFixture writes bob's and alice's data (values of 1 to 16 KiB, so
// many overflow pages) and erases alice, leaving megabytes of free pages.
func bigFixture(t *testing.T, path string) (alice, bob user, bobData map[string]string) {
	t.Helper()
	r := rand.New(rand.NewPCG(5, 6))
	alice, bob = newUser("alice", r), newUser("bob", r)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bobData = map[string]string{}
	for tx := range 40 {
		err := db.Update(func(btx *bolt.Tx) error {
			for _, u := range []user{alice, bob} {
				b, err := btx.CreateBucketIfNotExists([]byte(u.name))
				if err != nil {
					return err
				}
				for i := range 8 {
					v := make([]byte, 1024+r.IntN(15*1024))
					for p := 0; p+len(u.secret) < len(v); p += 500 {
						copy(v[p:], u.secret)
					}
					k := fmt.Sprintf("%04d-%d", tx, i)
					if err := b.Put([]byte(k), v); err != nil {
						return err
					}
					if u == bob {
						bobData[u.name+"|"+k] = string(v)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(alice.name)) }); err != nil {
		t.Fatal(err)
	}
	return alice, bob, bobData
}

func TestCrashDuringWipe(t *testing.T) {
	if path := os.Getenv(crashEnv); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.db")
	alice, _, bobData := bigFixture(t, orig)
	raw, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}

	for _, killAfter := range []int{1, 4, 12} {
		t.Run(strconv.Itoa(killAfter), func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("crash-%d.db", killAfter))
			if err := os.WriteFile(path, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringWipe$")
			cmd.Env = append(os.Environ(), crashEnv+"="+path)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			seen := 0
			for seen < killAfter && lines.Scan() {
				line := lines.Text()
				switch {
				case line == "done":
					t.Fatalf("the wipe finished after %d transactions, before the kill: enlarge the fixture", seen)
				case len(line) > 8 && line[:8] == "progress":
					seen++
				default:
					t.Logf("child: %s", line)
				}
			}
			// SIGKILL while the child is in its next transaction.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, out)
			if err := cmd.Wait(); err == nil {
				t.Fatal("child exited normally: not killed mid-wipe")
			}
			if seen < killAfter {
				t.Fatalf("child reported %d transactions, want %d", seen, killAfter)
			}

			db := openDB(t, path)
			check(t, db)
			got := contents(t, db)
			for k := range got {
				if len(k) > len(boltwipe.ScratchBucket) && k[:len(boltwipe.ScratchBucket)] == string(boltwipe.ScratchBucket) {
					delete(got, k) // a scratch bucket left by the crash
				}
			}
			equalMaps(t, got, bobData)

			// The next wipe completes the work and drops the scratch bucket.
			if _, err := boltwipe.Wipe(t.Context(), db); err != nil {
				t.Fatal(err)
			}
			check(t, db)
			equalMaps(t, contents(t, db), bobData)
			for _, m := range alice.markers() {
				if h := hits(t, path, m); len(h) > 0 {
					t.Fatalf("alice's %s still in the file: %v", m, h)
				}
			}
		})
	}
}
