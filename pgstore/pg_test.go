package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The tests run against a real PostgreSQL: the one PGSTORE_TEST_DSN names
// (.ci/run starts one and sets it), or else a throwaway cluster this test
// binary starts with the Debian postgresql package's initdb and pg_ctl and
// stops at exit. Without either they skip, unless CI is set: then they
// fail.

var (
	benchmarking bool
	clusterDSN   string // DSN of the server, "" when none
	clusterErr   error  // why there is none
	clusterStop  func()
)

func TestMain(m *testing.M) {
	flag.Parse()
	// Tests run without fsync, for speed; benchmarks with it, as a server
	// would.
	benchmarking = flag.Lookup("test.bench").Value.String() != ""
	clusterDSN, clusterStop, clusterErr = startCluster()
	code := m.Run()
	if clusterStop != nil {
		clusterStop()
	}
	os.Exit(code)
}

// startCluster returns the DSN of a PostgreSQL server for the tests.
func startCluster() (dsn string, stop func(), err error) {
	if dsn := os.Getenv("PGSTORE_TEST_DSN"); dsn != "" {
		return dsn, nil, nil
	}
	initdbs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(initdbs) == 0 {
		return "", nil, fmt.Errorf("no PGSTORE_TEST_DSN and no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)")
	}
	bin := filepath.Dir(initdbs[len(initdbs)-1])
	dir, err := os.MkdirTemp("", "pgstore-test-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	// initdb refuses to run as root: run it as the postgres user then.
	var asUser []string
	if os.Geteuid() == 0 {
		asUser = []string{"runuser", "-u", "postgres", "--"}
		if err := exec.Command("chown", "-R", "postgres", dir).Run(); err != nil {
			cleanup()
			return "", nil, fmt.Errorf("chown test cluster directory: %w", err)
		}
	}
	run := func(args ...string) error {
		argv := append(append([]string(nil), asUser...), args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", filepath.Base(args[0]), err, out)
		}
		return nil
	}
	if err := run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"); err != nil {
		cleanup()
		return "", nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses='' -k %s -c max_connections=200", sock)
	if !benchmarking {
		opts += " -c fsync=off"
	}
	if err := run(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-o", opts, "start"); err != nil {
		cleanup()
		return "", nil, err
	}
	stop = func() {
		_ = run(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		cleanup()
	}
	return fmt.Sprintf("host=%s user=postgres dbname=postgres", sock), stop, nil
}

// needDB skips the test when no server is available, or fails it when CI
// is set.
func needDB(t testing.TB) string {
	t.Helper()
	if clusterDSN == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and no PostgreSQL for the tests: %v", clusterErr)
		}
		t.Skipf("no PostgreSQL for the tests: %v", clusterErr)
	}
	return clusterDSN
}

// newPool returns a pool whose search_path is a fresh schema of its own,
// dropped at the end of the test.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	schema := freshSchema(t)
	return poolIn(t, schema)
}

// freshSchema creates an empty schema, dropped when the test ends.
func freshSchema(t testing.TB) string {
	t.Helper()
	dsn := needDB(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Errorf("connect: %v", err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return schema
}

// poolIn returns a pool using schema, closed when the test ends.
func poolIn(t testing.TB, schema string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(needDB(t))
	if err != nil {
		t.Fatalf("parse DSN: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
