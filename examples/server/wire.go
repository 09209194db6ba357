package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/examples/server/internal/web"
	"chatbx.eu/privacy/logredact"
	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/retention"
	"chatbx.eu/privacy/upload"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"
)

// namedDB is one bbolt file of the data directory.
type namedDB struct {
	name string
	db   *bolt.DB
}

// openLogs opens the two rotating log files in -log-dir and the loggers
// over them. Every logger of the server goes through logredact: the
// connection log and the operational log (stderr) through the Handler,
// whose maintenance window -reveal-ips opens; the HTTP error log through the
// Scrubber.
func (srv *Server) openLogs() error {
	cfg := srv.cfg
	xc := logredact.XMPPLogConfig(cfg.LogDir)
	xc.Name, xc.Now = "xmpp", cfg.Now
	hc := logredact.HTTPErrorLogConfig(cfg.LogDir)
	hc.Name, hc.Now = "http-errors", cfg.Now
	var err error
	if srv.xmppLog, err = logredact.OpenRotating(xc); err != nil {
		return fmt.Errorf("connection log: %w", err)
	}
	srv.closers = append(srv.closers, srv.xmppLog.Close)
	if srv.httpLog, err = logredact.OpenRotating(hc); err != nil {
		return fmt.Errorf("HTTP error log: %w", err)
	}
	srv.closers = append(srv.closers, srv.httpLog.Close)

	opts := &logredact.Options{Now: cfg.Now}
	srv.redact = logredact.NewHandler(slog.NewJSONHandler(srv.xmppLog, nil), opts)
	srv.connLog = slog.New(srv.redact)
	srv.log = slog.New(logredact.NewHandler(slog.NewTextHandler(cfg.Stderr, nil), opts))
	scrub := logredact.NewScrubber(srv.httpLog, opts)
	srv.closers = append(srv.closers, scrub.Close)
	srv.errorLog = log.New(scrub, "", log.LstdFlags|log.LUTC)
	if cfg.RevealIPs > 0 {
		if err := srv.redact.Reveal(cfg.RevealIPs, "operator flag -reveal-ips"); err != nil {
			return fmt.Errorf("-reveal-ips: %w", err)
		}
	}
	srv.closers = append(srv.closers, srv.redact.Conceal)
	return nil
}

// wire builds every package's service over its store: accounts, archive,
// uploads, the IQ muxes, the web pages and the retention scheduler.
func (srv *Server) wire(ctx context.Context) error {
	cfg := srv.cfg

	// Message archive (mam.db).
	mamDB, err := srv.openDB("mam.db")
	if err != nil {
		return err
	}
	// EraseGroupMessages: a deleted user's messages in room archives go
	// too (rooms store the real JID apart, shown to the owner only).
	if srv.mamStore, err = mam.NewBoltStoreWithConfig(mamDB, mam.BoltConfig{Now: cfg.Now, EraseGroupMessages: true}); err != nil {
		return fmt.Errorf("mam: %w", err)
	}
	mamCfg := mam.Config{
		Roster:  rosterLookup{srv.store},
		Rooms:   roomAccess{srv.muc},
		IsLocal: srv.isLocalUser,
		Logger:  srv.log,
		Now:     cfg.Now,
	}
	srv.archiver = mam.NewArchiver(srv.mamStore, mamCfg)
	mamHandler := mam.NewHandler(srv.mamStore, mamCfg)

	// Uploads (upload.db and the uploads directory).
	upDB, err := srv.openDB("upload.db")
	if err != nil {
		return err
	}
	meta, err := upload.NewBoltMetaStore(upDB)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	blobs, err := upload.NewFSBlobStore(filepath.Join(cfg.DataDir, "uploads"))
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	srv.uploads, err = upload.NewService(meta, blobs, upload.Config{
		BaseURL:     srv.baseURL + "/upload",
		MaxFileSize: cfg.UploadMax,
		TTL:         cfg.UploadTTL,
		Allow:       func(j jid.JID) bool { return srv.isLocalUser(j) },
		Now:         cfg.Now,
	})
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	srv.uploadMux = mux.New(stanza.NSClient, upload.Handle(srv.uploads))

	if err := srv.wirePersonal(ctx); err != nil {
		return err
	}

	// Accounts (accounts.db); every Holder is erased on deletion.
	accDB, err := srv.openDB("accounts.db")
	if err != nil {
		return err
	}
	accStore, err := account.NewBoltStore(accDB)
	if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	params := account.DefaultParams()
	if cfg.FastHashing {
		params = account.MinParams()
	}
	srv.manager, err = account.NewManager(accStore, account.Config{
		Domain: cfg.Domain,
		Params: params,
		// Loopback clients are not limited when registering (as in
		// Prosody); failed logins are limited for everyone.
		Exempt:  func(key string) bool { return key == exemptKey },
		Holders: []account.Holder{srv.mamStore, srv.uploads, subsHolder{srv}, blockingHolder{srv}, srv.store, srv.pep, logHolder{srv}, srv.private, srv.vcards, srv.offline.store}, // subsHolder reads the roster
		Now:     cfg.Now,
		Logger:  srv.log,
	})
	if err != nil {
		return fmt.Errorf("account: %w", err)
	}
	if err := srv.manager.Resume(ctx); err != nil {
		srv.log.Error("resuming interrupted account deletions", "err", err)
	}

	srv.userMux = mux.New(stanza.NSClient,
		ping.Handle(),
		mam.Handle(mamHandler),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: roster.NS, Local: "query"}, srv.handleRoster),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: roster.NS, Local: "query"}, srv.handleRoster),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: account.NS, Local: "query"}, srv.handleRegister),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsBlocking, Local: "blocklist"}, srv.handleBlocking),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsBlocking, Local: "block"}, srv.handleBlocking),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsBlocking, Local: "unblock"}, srv.handleBlocking),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: account.NS, Local: "query"}, srv.handleRegister),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsPrivate, Local: "query"}, srv.handlePrivate),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsPrivate, Local: "query"}, srv.handlePrivate),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsVCard, Local: "vCard"}, srv.handleVCard),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: nsVCard, Local: "vCard"}, srv.handleVCard),
	)

	if srv.scheduler, err = retention.NewScheduler(retention.Config{
		Jobs:   srv.retentionJobs(),
		Logger: srv.log,
		Now:    cfg.Now,
	}); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	fmt.Fprintf(cfg.Stderr, "Privacy report (also at /privacy):\n%s\n", srv.scheduler.PrivacyReport().Markdown())
	fmt.Fprint(cfg.Stderr, srv.offlineReportNote())
	srv.wireHTTP()
	return nil
}

// retentionJobs are the lifetimes the server promises, each enforced by a
// job: uploads, the two logs, tombstones of deleted names, the retry of
// interrupted erasures and, last, the purge of freed bbolt pages. The
// uploads and logs get their MaxAge from their package (RetentionMaxAge),
// which leaves room for a late run: no file or line outlives its promise.
func (srv *Server) retentionJobs() []retention.Job {
	uploadsEvery := min(10*time.Minute, srv.uploads.TTL()/10)
	jobs := []retention.Job{
		{Name: "uploads", Data: "uploaded files",
			MaxAge: srv.uploads.RetentionMaxAge(uploadsEvery), Expirer: srv.uploads, Interval: uploadsEvery},
		{Name: "xmpp-log", Data: "XMPP connection log (time, user, anonymized IP), hourly files: no line kept over 24 hours",
			MaxAge: srv.xmppLog.RetentionMaxAge(10 * time.Minute), Expirer: srv.xmppLog, Interval: 10 * time.Minute},
		{Name: "http-error-log", Data: "HTTP error log (anonymized IPs), daily files: no line kept over 30 days",
			MaxAge: srv.httpLog.RetentionMaxAge(time.Hour), Expirer: srv.httpLog, Interval: time.Hour},
		{Name: "tombstones", Data: "keyed hashes of deleted usernames (block their re-registration)",
			MaxAge: 365 * 24 * time.Hour, Expirer: retention.ExpirerFunc(srv.manager.ExpireTombstones), Interval: 24 * time.Hour},
		{Name: "erasure-retry", Data: "data of deleted accounts whose erasure was interrupted",
			Expirer: retention.ExpirerFunc(func(ctx context.Context, _ time.Time) (int, error) {
				return 0, srv.manager.Resume(ctx)
			}), Interval: time.Hour},
	}
	jobs = append(jobs, srv.offlineJobs()...)
	return append(jobs, srv.purgeJobs()...)
}

// wireHTTP builds the HTTPS handlers: uploads, /account, /privacy.
func (srv *Server) wireHTTP() {
	srv.httpMux = http.NewServeMux()
	srv.httpMux.Handle("/upload/", srv.uploads)
	pages := web.New(web.Config{
		Backend: accountPages{srv.manager, srv},
		Privacy: srv.privacyItems,
		Domain:  srv.cfg.Domain,
		Logger:  srv.log,
		// The same key as for XMPP logins: both share account's limiter.
		ClientKey: func(r *http.Request) string {
			ap, err := netip.ParseAddrPort(r.RemoteAddr)
			if err != nil {
				return r.RemoteAddr
			}
			return clientKey(ap.Addr())
		},
		FormTimeout: srv.bodyTimeout(),
	})
	srv.httpMux.Handle("/account", pages)
	srv.httpMux.Handle("/account/", pages)
	srv.httpMux.Handle("/privacy", pages)
	srv.httpSrv = srv.newHTTPServer(srv.httpMux) // limits in https.go
}

// privacyItems is the /privacy report: each job's data and lifetime, plus
// what is kept until the user deletes it.
func (srv *Server) privacyItems(context.Context) ([]web.PrivacyItem, error) {
	var items []web.PrivacyItem
	for _, e := range srv.scheduler.PrivacyReport().Entries {
		item := web.PrivacyItem{Data: e.Data, Lifetime: e.Lifetime, Job: e.Job}
		if e.Lifetime <= 0 {
			// Jobs without MaxAge (erasure retries, page purges) act on
			// everything they find at each run: the data lives until the
			// next run, not "until you delete it".
			item.Kept = "until the next run (every " + retention.HumanDuration(e.Interval) + ")"
		}
		items = append(items, item)
	}
	items = append(items,
		web.PrivacyItem{Data: "message archive (only messages you opted in to archive; default: none)", Job: "account deletion"},
		web.PrivacyItem{Data: "account (username, Argon2id password hash), roster", Job: "account deletion"},
		web.PrivacyItem{Data: fmt.Sprintf("presence subscription requests to you (who asked, when; no message text), at most %d: a new one drops the oldest", maxPendingSubscriptions),
			Job: "account deletion", Kept: "until you or the requester answer or cancel"},
		web.PrivacyItem{Data: fmt.Sprintf("blocklist (at most %d addresses) and the number of spam reports you sent (no content, no reported address)", maxBlocklistItems),
			Job: "account deletion"},
		pepPrivacyItem,
		web.PrivacyItem{Data: "group chats: configuration of the rooms you own (destroyed with your account) and your affiliations in rooms (admin, member, banned)", Job: "account deletion or the room's destruction",
			Kept: "until you delete your account, or the room's owner or admins remove it; a room you own until you destroy it"},
		web.PrivacyItem{Data: "federation (talking to users of other servers), off unless the operator enables it: then only what the protocol needs when you write to someone on another server goes there; about remote servers only a connection log (domain, time, IP anonymized), no content, no list of their users beyond your roster and rooms' present occupants; when you delete your account, each contact is told (unsubscribe, unsubscribed, unavailable) so that their server forgets the relationship",
			Lifetime: 24 * time.Hour, Job: "xmpp-log"},
		web.PrivacyItem{Data: "stanzas sent to a client whose connection dropped, not acknowledged (XEP-0198), in memory only", Lifetime: srv.cfg.SMResumeTimeout, Job: "stream resumption window"},
	)
	items = append(items, srv.personalPrivacyItems()...)
	return items, nil
}

// startBackground starts the retention scheduler.
func (srv *Server) startBackground() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.scheduler.Run(ctx)
	}()
	srv.stopScheduler = func() { cancel(); <-done }
}

// stopBackground stops the scheduler (waiting for a running job).
func (srv *Server) stopBackground() {
	if srv.stopScheduler != nil {
		srv.stopScheduler()
	}
}

// purge runs every retention job once, in order (the purge of freed pages
// last), prints the reports and returns their joined errors.
func (srv *Server) purge(ctx context.Context) error {
	reports, err := srv.scheduler.RunOnce(ctx)
	for _, r := range reports {
		status := "ok"
		if r.Err != nil {
			status = "failed: " + r.Err.Error()
		}
		fmt.Fprintf(srv.cfg.Stderr, "purge: %-16s removed %d (%s)\n", r.Job, r.Removed, status)
	}
	if cerr := srv.compactAll(); cerr != nil {
		return errors.Join(err, cerr)
	}
	fmt.Fprintf(srv.cfg.Stderr, "purge: rewrote %d database files without their free pages\n", len(srv.dbs))
	return err
}

// compactAll is the residue purge of -purge: it rewrites every bbolt file
// with only its live data (bolt.Compact) and replaces the original, so that
// no erased or expired record survives in a free page. The databases are
// closed afterwards; the server exits.
func (srv *Server) compactAll() error {
	for _, n := range srv.dbs {
		if err := compactFile(n.db); err != nil {
			return fmt.Errorf("purge %s: %w", n.name, err)
		}
	}
	return nil
}

// compactFile closes db and replaces its file by a compacted copy.
func compactFile(db *bolt.DB) error {
	path := db.Path()
	if err := db.Close(); err != nil {
		return err
	}
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	src, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return err
	}
	if err := bolt.Compact(dst, src, 4<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		return err
	}
	if err := dst.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// exemptKey is the rate-limit key of loopback registrations, which
// Config.Exempt lets through; every other key is a client IP.
const exemptKey = "loopback"

// accountPages is what the /account pages act on: the account.Manager,
// except that deleting an account first ends the user's sessions, exactly
// like <remove/> (deleteAccount).
type accountPages struct {
	*account.Manager
	srv *Server
}

// Delete ends the user's sessions, then erases the account.
func (p accountPages) Delete(ctx context.Context, username string) error {
	return p.srv.deleteAccount(ctx, username)
}

// logHolder makes the log files a Holder: account deletion removes every
// line naming the user, so the username leaves the data directory at once
// rather than when the files expire.
type logHolder struct{ srv *Server }

func (logHolder) Name() string { return "logs" }

// Export states what the logs hold; their lines are not exported (they
// expire within 24 hours and 30 days).
func (h logHolder) Export(_ context.Context, _ jid.JID, w io.Writer) error {
	_, err := fmt.Fprintf(w, "<logs xmlns='urn:example:chatbx:logs'><connection-log lifetime='24h'/><http-error-log lifetime='720h'/></logs>\n")
	return err
}

func (h logHolder) Erase(ctx context.Context, user jid.JID) error {
	tok, err := json.Marshal(user.Localpart())
	if err != nil {
		return err
	}
	if _, err := h.srv.xmppLog.EraseLines(ctx, `"user":`+string(tok)); err != nil {
		return err
	}
	_, err = h.srv.httpLog.EraseLines(ctx, user.Bare().String())
	return err
}

// rosterLookup answers mam's roster question from the server store.
type rosterLookup struct{ st *serverStore }

func (r rosterLookup) InRoster(_ context.Context, owner, contact jid.JID) (bool, error) {
	return r.st.inRoster(owner.Localpart(), contact), nil
}

// roomAccess lets whoever may join an archiving room read its archive,
// also before joining (clients fetch the history first, then join): in a
// members-only room its members; real JIDs as in the room
// (mucService.archiveAccess).
type roomAccess struct{ m *mucService }

func (a roomAccess) Access(_ context.Context, roomJID, requester jid.JID) (allowed, seeReal bool, err error) {
	allowed, seeReal = a.m.archiveAccess(roomJID, requester)
	return allowed, seeReal, nil
}

// purgeJobs wipe the free pages of every bbolt file (retention.PurgeJob),
// so that erased and expired records do not linger in the files. They come
// last, after the expiry jobs whose deletions they wipe.
func (srv *Server) purgeJobs() []retention.Job {
	var jobs []retention.Job
	for _, n := range srv.dbs {
		jobs = append(jobs, retention.PurgeJob(purgeJobName(n.name), n.db, 10*time.Minute))
	}
	return jobs
}

// purgeJobName is the retention job wiping the file name ("mam.db" →
// "purge-mam").
func purgeJobName(file string) string { return "purge-" + strings.TrimSuffix(file, ".db") }

// purgeNow runs every purge job at once in the background (after an
// account's erasure), so the erased bytes leave the files within seconds
// rather than at the next scheduled run.
func (srv *Server) purgeNow() {
	if srv.scheduler == nil {
		return
	}
	srv.bg.Add(1)
	go func() {
		defer srv.bg.Done()
		for _, n := range srv.dbs {
			if _, err := srv.scheduler.RunJob(srv.ctx, purgeJobName(n.name)); err != nil {
				srv.log.Warn("purge after erasure; the scheduler retries", "job", purgeJobName(n.name), "err", err)
			}
		}
	}()
}
