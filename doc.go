// Package privacy is the root of chatbx.eu/privacy, a library of XMPP
// privacy components: the pieces a privacy-respecting XMPP provider needs to
// keep the promises of its privacy policy in code.
//
// This package holds no code; it documents how the others fit together.
//
// # Promises and the package that keeps each
//
//	Messages (1:1 and group) are archived only if the user     mam
//	opted in; the default is "never".
//	Uploaded files are deleted 30 days after upload             upload, retention
//	(configurable, never longer than promised).
//	A username may be a pseudonym; passwords are stored only    account
//	as Argon2id hashes.
//	Deleting an account deletes all of its stored data at      account + every Holder
//	once, and durably (a crash mid-way resumes).
//	A user can receive (export), correct, block and delete     account
//	their data.
//	XMPP logs (time, user, IP) keep IPs anonymized; full IPs    logredact, retention
//	only inside a time-boxed maintenance window; log files
//	older than 24 h are deleted.
//	HTTP error logs with IPs are deleted after 30 days.         logredact, retention
//	Every connection is TLS; no plaintext authentication.       examples/server
//
// # How the packages plug into a server
//
// The packages [chatbx.eu/privacy/mam], [chatbx.eu/privacy/upload],
// [chatbx.eu/privacy/account], [chatbx.eu/privacy/retention] and
// [chatbx.eu/privacy/logredact] never import each other. They meet through
// small interfaces declared by the package that consumes them and satisfied
// structurally, so an integrator passes one package's store to another
// without adapters:
//
//	// account.Holder: anything that holds personal data about a user.
//	type Holder interface {
//		Name() string
//		Export(ctx context.Context, user jid.JID, w io.Writer) error
//		Erase(ctx context.Context, user jid.JID) error
//	}
//
//	// retention.Expirer: anything that drops data older than a cutoff.
//	type Expirer interface {
//		Expire(ctx context.Context, before time.Time) (removed int, err error)
//	}
//
// The archive and upload stores implement both, so a server registers them
// with the account manager (deleting an account erases them) and with the
// retention scheduler (old data expires). A retention job deletes data
// older than its MaxAge each time it runs, so a package whose data has a
// promised lifetime gives the MaxAge that keeps the promise between two
// runs: upload.Service.RetentionMaxAge and
// logredact.RotatingFile.RetentionMaxAge. This package's tests hold each
// such job to the promise, in the privacy report and against the real
// stores. The XMPP side of each package is a
// set of mellium.im/xmpp mux options over a plain Go API; a server built on
// another XMPP library calls the Go API directly.
//
// Storage defaults to go.etcd.io/bbolt, one database handed in by the
// integrator; every store is an interface with a conformance suite in the
// package's "test" sub-package (mamtest, accounttest, uploadtest: one named
// subtest per clause of the contract, and an in-memory store whose zero
// value is ready to use), so another backend proves itself by passing it.
//
// # Names the packages share
//
// A service is built by a constructor that takes its stores and a Config
// whose zero fields are the private defaults: mam.NewArchiver(store, cfg),
// upload.NewService(meta, blobs, cfg), account.NewManager(store, cfg),
// retention.NewScheduler(cfg). A bbolt store is built from an open
// database: mam.NewBoltStore(db, mam.BoltConfig{}), account.NewBoltStore(db),
// upload.NewBoltMetaStore(db) (upload keeps file contents apart, in
// upload.NewFSBlobStore(dir)). logredact follows log/slog instead:
// logredact.NewHandler(next, *Options), with nil for the defaults.
//
// Every package names its errors alike: ErrConfig for a configuration a
// constructor refuses (a nil store or database included: never a panic),
// ErrBadRequest for malformed input (an XMPP payload, an argument), and
// ErrNotFound where a lookup can miss. Errors that carry data are structs
// that unwrap to their sentinel (upload.TooLargeError to
// upload.ErrTooLarge, account.PolicyError to account.ErrPolicy), so
// callers branch with errors.Is and read the data with errors.As.
//
// Each package's API is held to a bound (its api_test.go counts the
// exported names); what only the package itself needs stays unexported or
// in internal/ (the Argon2id toolkit is internal/argon).
//
// # The example server
//
// The directory examples/server holds a runnable TLS-only XMPP server that
// wires every package together:
//
//	go run ./examples/server
//
// examples/ is a module of its own (chatbx.eu/privacy/examples), so that
// what only the example needs (a browser driver for its tests) stays out of
// this module's requirements; the go.work file at the repository root joins
// the two for development.
package privacy
