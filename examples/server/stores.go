package main

// Shared stores: with -store the archive, upload records and accounts live
// in PostgreSQL (module pgstore), with -blobs the uploaded files in an S3
// bucket (module s3store), so that several server processes can serve the
// same users. Everything else stays in the bbolt files of each process's
// data directory (README, "Several nodes").

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/examples/server/internal/web"
	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/pgstore"
	"chatbx.eu/privacy/retention"
	"chatbx.eu/privacy/s3store"
	"chatbx.eu/privacy/upload"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"mellium.im/xmpp/jid"
)

// Defaults of the shared stores.
const (
	defaultClusterPoll = 2 * time.Second
	// postgresPurgeEvery is the interval of the purge-postgres job, which
	// rewrites the tables (VACUUM FULL) so that deleted rows leave the
	// data files.
	postgresPurgeEvery = time.Hour
)

// checkStore validates -store: "" (bbolt), a postgres:// or postgresql://
// URL, or a keyword/value DSN ("host=/run/postgresql dbname=xmpp").
func checkStore(s string) error {
	if s == "" {
		return nil
	}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") || strings.Contains(s, "=") {
		if _, err := pgxpool.ParseConfig(s); err != nil {
			// The DSN may hold a password: it is not repeated.
			return errors.New("-store: not a valid PostgreSQL connection string")
		}
		return nil
	}
	return errors.New("-store must be a postgres:// URL or a key=value DSN (empty: bbolt in -data)")
}

// blobsURL is a parsed -blobs: s3://host[:port]/bucket[/prefix] over
// HTTPS, or s3+http:// over plain HTTP (a server on the same host only).
type blobsURL struct {
	endpoint, bucket, prefix string
	secure                   bool
}

// parseBlobs parses -blobs ("" means the file system).
func parseBlobs(s string) (blobsURL, error) {
	if s == "" {
		return blobsURL{}, nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "s3" && u.Scheme != "s3+http") || u.Host == "" || u.User != nil {
		return blobsURL{}, errors.New("-blobs must be s3://host[:port]/bucket[/prefix] (or s3+http:// for plain HTTP); credentials come from the environment")
	}
	bucket, prefix, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if bucket == "" || u.RawQuery != "" || u.Fragment != "" {
		return blobsURL{}, errors.New("-blobs needs a bucket: s3://host[:port]/bucket[/prefix]")
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return blobsURL{endpoint: u.Host, bucket: bucket, prefix: prefix, secure: u.Scheme == "s3"}, nil
}

// openPostgres connects to -store (nothing without it). The pool is
// closed at exit.
func (srv *Server) openPostgres(ctx context.Context) error {
	if srv.cfg.Store == "" {
		return nil
	}
	pc, err := pgxpool.ParseConfig(srv.cfg.Store)
	if err != nil {
		return errors.New("-store: not a valid PostgreSQL connection string")
	}
	// One plan per prepared statement rather than a new plan at each
	// execution: a page of the archive in half the time (pgstore's
	// BENCHMARKS.md). The DSN may say otherwise.
	if _, set := pc.ConnConfig.RuntimeParams["plan_cache_mode"]; !set {
		pc.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("-store: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("-store: %w", err)
	}
	srv.pool = pool
	srv.closers = append(srv.closers, func() error { pool.Close(); return nil })
	return nil
}

// openArchive returns the message archive: PostgreSQL with -store, else
// mam.db. A deleted user's messages in room archives go too (rooms store
// the real JID apart, shown to the owner only).
func (srv *Server) openArchive(ctx context.Context) (mam.Store, error) {
	if srv.pool != nil {
		st, err := pgstore.NewMAMStore(ctx, srv.pool, pgstore.MAMConfig{Now: srv.cfg.Now, EraseGroupMessages: true})
		if err != nil {
			return nil, fmt.Errorf("mam: %w", err)
		}
		return st, nil
	}
	db, err := srv.openDB("mam.db")
	if err != nil {
		return nil, err
	}
	st, err := mam.NewBoltStore(db, mam.BoltConfig{Now: srv.cfg.Now, EraseGroupMessages: true})
	if err != nil {
		return nil, fmt.Errorf("mam: %w", err)
	}
	return st, nil
}

// openUploadStores returns the upload records (PostgreSQL with -store,
// else upload.db) and the files (the S3 bucket of -blobs, else the uploads
// directory).
func (srv *Server) openUploadStores(ctx context.Context) (upload.MetaStore, upload.BlobStore, error) {
	var meta upload.MetaStore
	if srv.pool != nil {
		m, err := pgstore.NewUploadMetaStore(ctx, srv.pool)
		if err != nil {
			return nil, nil, fmt.Errorf("upload: %w", err)
		}
		meta = m
	} else {
		db, err := srv.openDB("upload.db")
		if err != nil {
			return nil, nil, err
		}
		m, err := upload.NewBoltMetaStore(db)
		if err != nil {
			return nil, nil, fmt.Errorf("upload: %w", err)
		}
		meta = m
	}
	b, err := parseBlobs(srv.cfg.Blobs)
	if err != nil {
		return nil, nil, err
	}
	if b.bucket == "" {
		blobs, err := upload.NewFSBlobStore(filepath.Join(srv.cfg.DataDir, "uploads"))
		if err != nil {
			return nil, nil, fmt.Errorf("upload: %w", err)
		}
		return meta, blobs, nil
	}
	client, err := minio.New(b.endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(srv.cfg.S3AccessKey, srv.cfg.S3SecretKey, ""),
		Secure: b.secure,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("-blobs: %w", err)
	}
	blobs, err := s3store.New(client, b.bucket, s3store.Options{Prefix: b.prefix})
	if err != nil {
		return nil, nil, fmt.Errorf("-blobs: %w", err)
	}
	if err := blobs.EnsureBucket(ctx); err != nil {
		return nil, nil, fmt.Errorf("-blobs: %w", err)
	}
	return meta, blobs, nil
}

// openAccounts returns the account store: PostgreSQL with -store, else
// accounts.db.
func (srv *Server) openAccounts(ctx context.Context) (account.Store, error) {
	if srv.pool != nil {
		st, err := pgstore.NewAccountStore(ctx, srv.pool)
		if err != nil {
			return nil, fmt.Errorf("account: %w", err)
		}
		return st, nil
	}
	db, err := srv.openDB("accounts.db")
	if err != nil {
		return nil, err
	}
	st, err := account.NewBoltStore(db)
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	return st, nil
}

// postgresPurgeJob rewrites pgstore's tables (pgstore.Purge, VACUUM FULL)
// so that deleted and expired rows leave PostgreSQL's data files; nil
// without -store. It comes with the bbolt purges, after the expiry jobs.
func (srv *Server) postgresPurgeJob() []retention.Job {
	if srv.pool == nil {
		return nil
	}
	return []retention.Job{{
		Name:     purgePostgres,
		Data:     "deleted rows in PostgreSQL's table files (not its WAL and backups: see the README)",
		Interval: postgresPurgeEvery,
		Expirer: retention.ExpirerFunc(func(ctx context.Context, _ time.Time) (int, error) {
			return 0, pgstore.Purge(ctx, srv.pool)
		}),
	}}
}

const purgePostgres = "purge-postgres"

// watchAccounts ends, on this node, the sessions of accounts that another
// node deleted or blocked (the account store is shared only with -store).
// Every ClusterPoll it reads the account of each user with a session here:
// a blocked account's sessions end; a deleted one's end and the user's data
// is erased again from every Holder, which reaches this node's bbolt files
// and anything a session here stored after the other node's erasure.
func (srv *Server) watchAccounts(ctx context.Context) {
	t := time.NewTicker(srv.cfg.ClusterPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, user := range srv.sessions.usernames() {
			if srv.sessions.isBlocked(user) {
				continue // a deletion on this node
			}
			acc, err := srv.manager.Get(ctx, user)
			switch {
			case errors.Is(err, account.ErrNotFound):
				srv.eraseDeletedElsewhere(ctx, user)
			case err != nil:
				if ctx.Err() == nil {
					srv.log.Warn("account watch: reading an account failed; retried at the next poll", "err", err)
				}
			case acc.Blocked:
				srv.sessions.kick(user)
			}
		}
	}
}

// eraseDeletedElsewhere ends the sessions of user, whose account another
// node deleted, and erases the user from every Holder (idempotent: the
// shared stores are empty already, this node's files are not).
func (srv *Server) eraseDeletedElsewhere(ctx context.Context, user string) {
	srv.sessions.block(user)
	defer srv.sessions.unblock(user)
	srv.sessions.kick(user)
	wctx, cancel := context.WithTimeout(ctx, writeTimeout+time.Second)
	srv.sessions.waitGone(wctx, user)
	cancel()
	srv.sm.dropUser(user)
	j, err := jid.New(user, srv.cfg.Domain, "")
	if err != nil {
		return
	}
	srv.muc.forgetOwner(j)
	var errs []error
	for _, h := range srv.holders {
		if err := h.Erase(ctx, j); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Name(), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		srv.log.Error("erasing an account deleted on another node, on this node", "err", err)
	}
	srv.purgeNow()
}

// validBlobs reports whether -blobs parses.
func validBlobs(s string) bool {
	_, err := parseBlobs(s)
	return err == nil
}

// storagePrivacyItems state where the data lives and, with -store, what
// PostgreSQL keeps of deleted data after the purge (measured by
// TestErasureOnPostgresAndS3; README, "Several nodes").
func (srv *Server) storagePrivacyItems() []web.PrivacyItem {
	var items []web.PrivacyItem
	switch {
	case srv.pool == nil && srv.cfg.Blobs == "":
		items = append(items, web.PrivacyItem{Data: "where your data is stored: every item above in this server's data directory (database files and the uploads directory)",
			Job: "none (a statement)", Kept: "as stated above"})
	default:
		where := "message archive, upload records (file name, size, type, owner, times) and accounts in PostgreSQL; "
		if srv.pool == nil {
			where = "message archive, upload records and accounts in this server's data directory; "
		}
		files := "uploaded files in an S3 bucket; "
		if srv.cfg.Blobs == "" {
			files = "uploaded files in the data directory; "
		}
		items = append(items, web.PrivacyItem{Data: "where your data is stored: " + where + files +
			"rosters, rooms, PEP, vCards, private storage, blocklists, offline messages and logs in the data directory of each server you used",
			Job: "none (a statement)", Kept: "as stated above"})
	}
	if srv.pool != nil {
		items = append(items, web.PrivacyItem{
			Data: "deleted or expired rows in PostgreSQL: in its table files until the purge rewrites them (" + purgePostgres + "), " +
				"in its write-ahead log until the segment is removed or overwritten, in WAL archives and backups as long as the operator keeps them",
			Job:  purgePostgres + " (tables); PostgreSQL's checkpoints (WAL)",
			Kept: "table files: until the next hourly purge; WAL: see the server's README",
		})
	}
	return items
}
