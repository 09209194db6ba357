package main

// Tests of the shared stores (stores.go) against a real PostgreSQL and a
// real S3 server (versitygw), each started by the test under a temporary
// directory on free loopback ports / a Unix socket and stopped at its end.
// Without them the tests skip, or fail when CI is set.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stream"
)

// missing skips the test, or fails it when CI is set.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set and "+format, args...)
	}
	t.Skipf(format, args...)
}

// testPostgres is a throwaway PostgreSQL cluster of one test.
type testPostgres struct {
	DSN  string
	Data string // the data directory (its pg_wal too)
}

// startPostgres starts a cluster with Debian's initdb and pg_ctl (as the
// postgres user when run as root), Unix socket only, stopped and removed
// when the test ends, with the given settings ("name=value"). fsync stays
// on (the default): the scans look at what a real server writes.
func startPostgres(t *testing.T, settings ...string) testPostgres {
	t.Helper()
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(initdbs) == 0 {
		missing(t, "no PostgreSQL (apt-get install postgresql)")
	}
	slices.Sort(initdbs)
	bin := filepath.Dir(initdbs[len(initdbs)-1])
	// Not t.TempDir: the postgres user must reach it.
	dir, err := os.MkdirTemp("", "server-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var asUser []string
	if os.Geteuid() == 0 {
		asUser = []string{"runuser", "-u", "postgres", "--"}
		if out, err := exec.Command("chown", "-R", "postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
	}
	pg := func(args ...string) error {
		argv := append(slices.Clone(asUser), args...)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", filepath.Base(args[0]), err, out)
		}
		return nil
	}
	if err := pg(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c autovacuum=off", sock)
	for _, o := range settings {
		opts += " -c " + o
	}
	if err := pg(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-o", opts, "start"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pg(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop")
	})
	return testPostgres{DSN: fmt.Sprintf("host=%s user=postgres dbname=postgres", sock), Data: data}
}

// exec runs SQL statements on the cluster.
func (p testPostgres) exec(t *testing.T, sql ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// testS3 is a versitygw serving a temporary directory.
type testS3 struct {
	Endpoint, Access, Secret string
	Dir                      string // the posix back end's directory
}

// startS3 starts versitygw (from PATH or .ci/run's cache) on a free
// loopback port, stopped when the test ends.
func startS3(t *testing.T) testS3 {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache")
		}
		bin = filepath.Join(cache, "chatbx-ci", "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			missing(t, "no versitygw (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		}
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := testS3{Endpoint: addr, Access: "test-access", Secret: "test-secret-0123456789", Dir: data}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--access", s.Access, "--secret", s.Secret, "--port", addr, "posix", data)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	// Ready when it accepts a connection.
	deadline := time.Now().Add(testTimeout)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return s
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("versitygw exited: %v\n%s", err, log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("versitygw did not start")
		}
	}
}

// withShared points a test server at the shared stores.
func withShared(pg testPostgres, s3 testS3) testOption {
	return withConfig(func(c *Config) {
		c.Store = pg.DSN
		c.Blobs = "s3+http://" + s3.Endpoint + "/uploads"
		c.S3AccessKey, c.S3SecretKey = s3.Access, s3.Secret
		c.ClusterPoll = 50 * time.Millisecond
	})
}

// onServer rewrites an upload URL of one server to another's HTTPS base.
func onServer(u string, ts *testServer) string {
	i := strings.Index(u, "/upload/")
	return ts.HTTPSURL + u[i:]
}

func httpGet(t *testing.T, ts *testServer, u string) (int, string) {
	t.Helper()
	res, err := ts.HTTPClient.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestTwoNodes: two servers share one PostgreSQL and one S3 bucket and
// nothing in memory. A user registered on one logs in on the other; the
// archive and the uploads are the same on both; an account deleted on one
// is gone on both, its session on the other ends (account watch) and the
// other node's own files (here: a vCard) lose the user's data too.
func TestTwoNodes(t *testing.T) {
	pg, s3 := startPostgres(t), startS3(t)
	a := startTestServer(t, withShared(pg, s3))
	b := startTestServer(t, withShared(pg, s3))

	a.Register(t, "alice", "alice password")
	a.Register(t, "bob", "bob password 1")
	if err := b.register("alice", "another password"); err == nil {
		t.Fatal("alice registered twice, once on each node")
	}
	aliceA := a.Login(t, "alice", "alice password")
	bobA := a.Login(t, "bob", "bob password 1")
	setPrefs(t, aliceA, "always")
	chat(t, aliceA, bobA, "archived on node A")
	get := uploadFile(t, a, aliceA, "f.txt", "file put on node A")

	aliceB := b.Login(t, "alice", "alice password") // registered on A
	if got, _ := mamQuery(t, aliceB, "", ""); len(got) != 1 || got[0] != "archived on node A" {
		t.Fatalf("archive on node B: %q", got)
	}
	if code, body := httpGet(t, b, onServer(get, b)); code != http.StatusOK || body != "file put on node A" {
		t.Fatalf("GET of A's upload on node B: %d %q", code, body)
	}
	// Data only node B holds (server.db of B's data directory).
	const vcardMarker = "Node-B-vcard-7hq2"
	if resp := aliceB.IQ(t, `<iq type="set" id="v"><vCard xmlns="vcard-temp"><FN>`+vcardMarker+`</FN></vCard></iq>`); resp.attr("type") != "result" {
		t.Fatalf("vCard set: %s", stanzaErrorCondition(resp))
	}
	if found := scanDir(t, b.DataDir, vcardMarker); len(found) == 0 {
		t.Fatal("the vCard is not in B's data directory: the scan below would prove nothing")
	}

	// Deleted on A.
	start := time.Now()
	if resp := aliceA.IQ(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:register"><remove/></query></iq>`); resp.attr("type") != "result" {
		t.Fatalf("remove: %s", stanzaErrorCondition(resp))
	}
	var se stream.Error
	if err := aliceB.WaitEnd(t); !errors.As(err, &se) || se.Err != "not-authorized" {
		t.Fatalf("session on node B ended with %v", err)
	}
	t.Logf("session on the other node ended %v after the removal (poll %v)", time.Since(start).Round(time.Millisecond), b.cfg.ClusterPoll)
	for _, ts := range []*testServer{a, b} {
		if c, err := ts.login("alice", "alice password", false); err == nil {
			c.Close()
			t.Fatal("login after deletion")
		}
		if code, _ := httpGet(t, ts, onServer(get, ts)); code != http.StatusNotFound {
			t.Fatalf("GET of the deleted user's upload: %d", code)
		}
	}
	// B's erasure runs after the session ended; wait for it through the
	// purge it starts last.
	b.bg.Wait()
	if md, err := b.mamStore.Metadata(context.Background(), jid.MustParse("alice@localhost")); err != nil || md.EndID != "" {
		t.Fatalf("archive after deletion: %+v %v", md, err)
	}
	if _, err := b.scheduler.RunJob(context.Background(), purgeJobName("server.db")); err != nil {
		t.Fatal(err)
	}
	if found := scanDir(t, b.DataDir, vcardMarker); len(found) > 0 {
		t.Errorf("node B kept the deleted user's data: %v", found)
	}
	// Bob is untouched on both, until blocked on A (GDPR Art. 18): then
	// his session on B ends too, without erasure.
	bobB := b.Login(t, "bob", "bob password 1")
	if err := a.manager.Block(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}
	if err := bobB.WaitEnd(t); !errors.As(err, &se) || se.Err != "not-authorized" {
		t.Fatalf("blocked user's session on node B ended with %v", err)
	}
	if _, err := b.manager.Get(context.Background(), "bob"); err != nil {
		t.Fatalf("the blocked account: %v", err)
	}
	// /privacy says where the data is.
	if code, page := httpGet(t, b, b.HTTPSURL+"/privacy"); code != http.StatusOK || !strings.Contains(page, "in PostgreSQL") || !strings.Contains(page, "S3 bucket") {
		t.Fatalf("/privacy does not say where the data lives: %d\n%s", code, page)
	}
}

// TestSharedStoreFlags: -store and -blobs accept what the README says and
// refuse the rest with an error that does not repeat a password.
func TestSharedStoreFlags(t *testing.T) {
	for _, tc := range []struct {
		store, blobs string
		ok           bool
		want         blobsURL
	}{
		{"", "", true, blobsURL{}},
		{"postgres://xmpp:hunter2@db.example.org/xmpp", "", true, blobsURL{}},
		{"host=/run/postgresql dbname=xmpp", "", true, blobsURL{}},
		{"postgres://xmpp:hunter2@db.example.org:notaport/xmpp", "", false, blobsURL{}},
		{"mysql://db", "", false, blobsURL{}},
		{"", "s3://s3.example.org/bucket", true, blobsURL{endpoint: "s3.example.org", bucket: "bucket", secure: true}},
		{"", "s3+http://127.0.0.1:9000/b/up", true, blobsURL{endpoint: "127.0.0.1:9000", bucket: "b", prefix: "up/"}},
		{"", "s3://s3.example.org/", false, blobsURL{}},
		{"", "s3://key:hunter2@s3.example.org/b", false, blobsURL{}},
		{"", "https://s3.example.org/b", false, blobsURL{}},
		{"", "s3://s3.example.org/b?x=1", false, blobsURL{}},
		{"", "/var/uploads", false, blobsURL{}},
	} {
		args := []string{"-store", tc.store, "-blobs", tc.blobs}
		_, err := parseFlags(args, io.Discard)
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v, want ok %v", args, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error repeats the password: %v", args, err)
		}
		if got, _ := parseBlobs(tc.blobs); tc.ok && got != tc.want {
			t.Errorf("-blobs %q: %+v, want %+v", tc.blobs, got, tc.want)
		}
	}
}

// checkpoint writes PostgreSQL's dirty pages to the data files, so that a
// scan sees what a crash or a copy of the disk would.
func (p testPostgres) checkpoint(t *testing.T) { p.exec(t, "CHECKPOINT") }

// scanPG scans the data directory without pg_wal (table, index and catalog
// files) and pg_wal apart.
func scanPG(t *testing.T, p testPostgres, secrets ...string) (files, wal []string) {
	t.Helper()
	all := scanDir(t, p.Data, secrets...)
	for _, f := range all {
		if strings.HasPrefix(f, "pg_wal/") {
			wal = append(wal, f)
		} else {
			files = append(files, f)
		}
	}
	return files, wal
}

// relations names the relation of each base/<db>/<filenode> hit, for the
// log.
func (p testPostgres) relations(t *testing.T, hits []string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	out := make([]string, 0, len(hits))
	for _, h := range hits {
		file, rest, _ := strings.Cut(h, ": ")
		var rel *string
		if parts := strings.Split(file, "/"); len(parts) == 3 && parts[0] == "base" {
			node, _, _ := strings.Cut(parts[2], ".")
			_ = conn.QueryRow(ctx, "SELECT pg_filenode_relation(0, $1::oid)::text", node).Scan(&rel)
		}
		name := "?"
		if rel != nil {
			name = *rel
		}
		out = append(out, fmt.Sprintf("%s (%s): %s", file, name, rest))
	}
	return out
}

// TestErasureOnPostgresAndS3 measures where a deleted user's strings stay
// on disk with the shared stores: PostgreSQL's data files (tables, indexes,
// catalogs such as pg_statistic) and WAL, and the S3 server's directory,
// after the deletion and again after the purge-postgres job (pgstore.Purge).
// It holds the promise the README makes: after the purge the data files and
// the bucket hold none of them; the WAL does (until recycled), which the
// README states.
//
// Twice: with PostgreSQL's defaults, and with wal_recycle=off, under which
// a WAL segment is removed rather than renamed for reuse (with its old
// bytes) once a checkpoint no longer needs it.
func TestErasureOnPostgresAndS3(t *testing.T) {
	for _, recycle := range []bool{true, false} {
		t.Run(fmt.Sprintf("wal_recycle=%v", recycle), func(t *testing.T) {
			testErasureOnPostgresAndS3(t, recycle)
		})
	}
}

func testErasureOnPostgresAndS3(t *testing.T, walRecycle bool) {
	var settings []string
	if !walRecycle {
		settings = append(settings, "wal_recycle=off")
	}
	pg, s3 := startPostgres(t, settings...), startS3(t)
	ts := startTestServer(t, withShared(pg, s3))
	const (
		user       = "quorvexn"
		chatMarker = "Mark3r-pgchat-2j8w"
		fileMarker = "Mark3r-s3file-9d4c"
	)
	ts.Register(t, user, "quorvex password")
	ts.Register(t, "bob", "bob password 1")
	q := ts.Login(t, user, "quorvex password")
	b := ts.Login(t, "bob", "bob password 1")
	setPrefs(t, q, "always")
	for i := range 20 {
		chat(t, q, b, fmt.Sprintf("%s %d", chatMarker, i))
	}
	uploadFile(t, ts, q, "f.txt", fileMarker)
	// Statistics as autovacuum's ANALYZE would have gathered them on a
	// live server (they sample column values).
	pg.exec(t, "ANALYZE")
	pg.checkpoint(t)
	secrets := []string{user, chatMarker, fileMarker}
	files, wal := scanPG(t, pg, secrets...)
	inS3 := scanDir(t, s3.Dir, fileMarker)
	if len(files) == 0 || len(wal) == 0 || len(inS3) == 0 {
		t.Fatalf("the test data is not on disk before the deletion (the scan would prove nothing): files %v, WAL %v, S3 %v", files, wal, inS3)
	}

	if resp := q.IQ(t, `<iq type="set" id="rm"><query xmlns="jabber:iq:register"><remove/></query></iq>`); resp.attr("type") != "result" {
		t.Fatalf("remove: %s", stanzaErrorCondition(resp))
	}
	q.WaitEnd(t)
	ts.bg.Wait()
	pg.checkpoint(t)
	files, wal = scanPG(t, pg, secrets...)
	t.Logf("after the deletion, before the purge: %d hits in data files, %d in WAL:\n%s", len(files), len(wal), strings.Join(append(pg.relations(t, files), wal...), "\n"))
	if found := scanDir(t, s3.Dir, fileMarker); len(found) > 0 {
		t.Errorf("the S3 directory keeps the deleted file: %v", found)
	}

	start := time.Now()
	if _, err := ts.scheduler.RunJob(context.Background(), purgePostgres); err != nil {
		t.Fatal(err)
	}
	t.Logf("purge-postgres took %v", time.Since(start).Round(time.Millisecond))
	pg.checkpoint(t)
	files, wal = scanPG(t, pg, secrets...)
	t.Logf("after the purge: %d hits in WAL:\n%s", len(wal), strings.Join(wal, "\n"))
	// How long the WAL keeps them: two segment switches and checkpoints
	// recycle the segment, which keeps its old bytes until overwritten.
	pg.exec(t, "SELECT pg_switch_wal()", "CHECKPOINT", "SELECT pg_switch_wal()", "CHECKPOINT")
	_, walLater := scanPG(t, pg, secrets...)
	t.Logf("after two more WAL switches and checkpoints: %d hits in WAL:\n%s", len(walLater), strings.Join(walLater, "\n"))
	if !walRecycle && len(walLater) > 0 {
		t.Errorf("with wal_recycle=off, the WAL keeps the deleted user's strings after two segment switches and checkpoints")
	}
	if len(files) > 0 {
		t.Errorf("PostgreSQL's data files keep the deleted user's strings after the purge:\n%s", strings.Join(pg.relations(t, files), "\n"))
	}
}
