package privacy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/logredact"
	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/retention"
	"chatbx.eu/privacy/upload"
)

// Example wires the five packages the way a server does, over a temporary
// directory: a log that anonymizes addresses, accounts, an opt-in message
// archive, file uploads, the retention scheduler, and an account deletion
// that erases the user's data from every Holder.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "privacy-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// One bbolt file per package; the server opens and closes them.
	open := func(name string) *bolt.DB {
		db, err := bolt.Open(filepath.Join(dir, name), 0o600, nil)
		if err != nil {
			log.Fatal(err)
		}
		return db
	}
	mamDB, uploadDB, accountDB := open("mam.db"), open("upload.db"), open("accounts.db")
	defer mamDB.Close()
	defer uploadDB.Close()
	defer accountDB.Close()

	// Logs: addresses are anonymized before a record is written; the files
	// rotate hourly and no record outlives 24 hours. (The time attribute is
	// left out here so that the output below stays the same.)
	xmppLog, err := logredact.OpenRotating(logredact.XMPPLogConfig(filepath.Join(dir, "logs")))
	if err != nil {
		log.Fatal(err)
	}
	defer xmppLog.Close()
	noTime := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	connLog := slog.New(logredact.NewHandler(slog.NewJSONHandler(io.MultiWriter(xmppLog, os.Stdout), noTime), nil))

	// The archive: nothing is stored for a user who did not opt in.
	archive, err := mam.NewBoltStore(mamDB, mam.BoltConfig{})
	if err != nil {
		log.Fatal(err)
	}
	archiver := mam.NewArchiver(archive, mam.Config{})

	// Uploads: metadata in bbolt, contents in files, 30 days by default.
	meta, err := upload.NewBoltMetaStore(uploadDB)
	if err != nil {
		log.Fatal(err)
	}
	blobs, err := upload.NewFSBlobStore(filepath.Join(dir, "uploads"))
	if err != nil {
		log.Fatal(err)
	}
	uploads, err := upload.NewService(meta, blobs, upload.Config{BaseURL: "https://upload.example.org/upload"})
	if err != nil {
		log.Fatal(err)
	}

	// Accounts: deleting one erases it from every Holder, durably.
	accountStore, err := account.NewBoltStore(accountDB)
	if err != nil {
		log.Fatal(err)
	}
	accounts, err := account.NewManager(accountStore, account.Config{
		Domain:  "example.org",
		Params:  account.MinParams(), // fast for the example; leave zero in production
		Holders: []account.Holder{archive, uploads},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Retention: each job's MaxAge comes from the package that keeps the
	// promise, so that the data is gone in time between two runs; the purge
	// jobs wipe what the others deleted from the bbolt files.
	scheduler, err := retention.NewScheduler(retention.Config{
		Jobs: []retention.Job{
			{Name: "uploads", Data: "uploaded files", Expirer: uploads, MaxAge: uploads.RetentionMaxAge(0)},
			{Name: "xmpp-logs", Data: "connection logs", Expirer: xmppLog, MaxAge: xmppLog.RetentionMaxAge(0)},
			retention.PurgeJob("purge-upload", uploadDB, 0),
			retention.PurgeJob("purge-mam", mamDB, 0),
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}

	// Two users register; the log keeps only the /24 of the address.
	for _, name := range []string{"alice", "bob"} {
		if err := accounts.Register(ctx, "192.0.2.10", name, "lilac-sky-"+name); err != nil {
			log.Fatal(err)
		}
	}
	connLog.Info("registered", "user", "alice", "remote", netip.MustParseAddrPort("192.0.2.10:53211"))

	// Alice opts in to the archive; Bob never does.
	alice, bob := jid.MustParse("alice@example.org"), jid.MustParse("bob@example.org")
	if err := archive.SetPrefs(ctx, alice, mam.Prefs{Default: mam.DefaultAlways}); err != nil {
		log.Fatal(err)
	}
	res, err := archiver.Archive(ctx, mam.Chat{
		From:   jid.MustParse("alice@example.org/phone"),
		To:     bob,
		Stanza: mam.Stanza{Bytes: []byte(`<message xmlns='jabber:client' type='chat'><body>Hello Bob</body></message>`)},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("archived for alice: %v, for bob: %v\n", res.SenderID != "", res.RecipientID != "")

	// Alice asks for an upload slot.
	slot, err := uploads.RequestSlot(ctx, alice, "photo.jpg", 1024, "image/jpeg")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("slot under the base URL:", strings.HasPrefix(slot.PutURL, "https://upload.example.org/upload/"))

	// One run of every job, and the promises the configuration keeps.
	reports, err := scheduler.RunOnce(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range reports {
		fmt.Printf("job %s: error %v\n", r.Job, r.Err)
	}
	report := scheduler.PrivacyReport()
	fmt.Println("uploads within 30 days:", report.Check("uploads", 30*24*time.Hour))
	fmt.Println("logs within 24 hours:", report.Check("xmpp-logs", 24*time.Hour))

	// Alice deletes her account: her archive and her files go with it.
	if err := accounts.Delete(ctx, "alice"); err != nil {
		log.Fatal(err)
	}
	_, err = accounts.Get(ctx, "alice")
	fmt.Println("account gone:", errors.Is(err, account.ErrNotFound))
	page, err := archive.Query(ctx, alice, mam.Query{})
	if err != nil {
		log.Fatal(err)
	}
	prefs, err := archive.Prefs(ctx, alice)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("archive: %d messages, opted in: %v\n", len(page.Messages), prefs.Default == mam.DefaultAlways)
	files, err := meta.ByOwner(ctx, alice.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("upload records: %d\n", len(files))

	// Output:
	// {"level":"INFO","msg":"registered","user":"alice","remote":"192.0.2.0:53211"}
	// archived for alice: true, for bob: false
	// slot under the base URL: true
	// job uploads: error <nil>
	// job xmpp-logs: error <nil>
	// job purge-upload: error <nil>
	// job purge-mam: error <nil>
	// uploads within 30 days: <nil>
	// logs within 24 hours: <nil>
	// account gone: true
	// archive: 0 messages, opted in: false
	// upload records: 0
}
