// Package account manages XMPP accounts with privacy in mind: Argon2id
// password hashes, XEP-0077 In-Band Registration (register, change
// password, remove), and deletion that erases every piece of a user's
// stored data durably, along with export, correction and blocking of that
// data.
//
// # Promises
//
//   - A username may be a pseudonym: registration asks for a username and a
//     password only (no e-mail, no real name); Profile holds a nickname.
//   - Passwords are stored only as Argon2id hashes (RFC 9106 defaults t=3,
//     m=64 MiB, p=4; never below the OWASP floor m=19 MiB, t=2, p=1), in
//     PHC strings: $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>.
//   - Deleting an account deletes all of its data at once and durably: the
//     account is disabled and journaled in one transaction, every Holder
//     erases the user, then the record goes; after a crash, Resume finishes
//     the job. The name, and every name that looks like it, stays reserved
//     for a year by a tombstone that holds a keyed HMAC of the name's
//     Skeleton, never the name.
//   - New passwords (registration and change alike) are refused when they
//     are only white space (Unicode White_Space), one of the ~17,000 most
//     common passwords (compared without case and surrounding spaces; see
//     data/README.md for the list, its source and licence) or the
//     username: ErrWeakPassword. Existing passwords still log in.
//   - New usernames are refused when they mix scripts (Latin with
//     Cyrillic or Greek…; Unicode TR39 Highly Restrictive, which allows
//     Latin with Han and Hiragana/Katakana, Hangul or Bopomofo):
//     ErrMixedScripts; and when their confusable Skeleton (TR39) is that
//     of an existing account ("соре" in Cyrillic next to "cope", "a1ice"
//     next to "alice"): ErrExists, as for a taken name, without saying
//     which. The Store indexes skeletons and checks them in the same
//     transaction as the insert, so two look-alikes registered at once
//     cannot both succeed.
//   - A user can receive (Export: a zip of account.json and every Holder's
//     export), correct (Correct), block (Block: no login, data kept) and
//     delete (Delete, or <remove/> over XMPP) their data.
//
// # Usage
//
// The integrator opens a bbolt database, builds a Store and a Manager with
// every Holder of personal data (mam, upload… satisfy Holder as they are),
// calls Resume at start-up, and uses Authenticate in its SASL PLAIN
// callback and its web login alike (one shared brute-force limit):
//
//	store, err := account.NewBoltStore(db)
//	m, err := account.NewManager(store, account.Config{
//		Domain:  "example.org",
//		Holders: []account.Holder{archive, uploads},
//		Exempt:  func(key string) bool { return key == "127.0.0.1" },
//	})
//	err = m.Resume(ctx)                                    // finish interrupted deletions
//	err = m.Authenticate(ctx, clientIP, username, password) // ErrAuth, ErrBlocked, ErrRateLimited
//
// Per XMPP session, a Handler answers jabber:iq:register: built before
// authentication with HandlerConfig{Secure, Open, ClientKey} for
// registration, and after it with HandlerConfig{User, Secure, Kick} for
// password change and <remove/>:
//
//	mux.New(stanza.NSClient, account.Handle(account.NewHandler(m, cfg)), …)
//
// Register and ChangePassword refuse weak passwords and names with a
// *PolicyError whose Reason may be shown as it is (it never repeats the
// input); branch on ErrWeakPassword, ErrMixedScripts or ErrPolicy with
// errors.Is. The Handler answers them with not-acceptable and the reason,
// and a taken or look-alike name with conflict.
//
// A Store keeps Record.Skeleton. BoltStore computes the skeletons of
// accounts written before they existed when it is opened (and again if
// SkeletonVersion changes); another backend does the same with Skeleton.
// Tombstones written before skeletons, keyed by the name, keep reserving
// it.
//
// The registration form offers the legacy <username/> and <password/>
// fields and the same two fields as an XEP-0004 data form (XEP-0077 §8,
// FORM_TYPE jabber:iq:register), for clients such as Dino that read only
// data forms; a registration or password change may submit either
// (ParseQuery: a data form of type submit, FORM_TYPE checked, unknown
// fields ignored, one value of at most 4 KiB per field).
//
// Without TLS (HandlerConfig.Secure false) registration and password
// change are refused. A Handler answers every error with an IQ error and
// never ends the session itself; after <remove/> it calls Kick.
//
// # Data and dependencies
//
// The common-password list is a file of this package (data/), not a
// dependency: github.com/trustelem/zxcvbn, where it comes from, is a whole
// strength estimator whose several frequency lists would add megabytes to
// every binary for one list, and has not been released since 2019. The
// confusables table comes from github.com/mtibben/confusables (BSD-3,
// Unicode 13.0.0 data, unchanged since 2021): a small package with the
// TR39 skeleton and nothing else; its data is older than Unicode's latest,
// which matters only for characters added since, and SkeletonVersion lets
// a newer table re-index stored skeletons.
//
// # Errors and logs
//
// Errors are the sentinels of errors.go, wrapped; refusals by policy are
// *PolicyError values whose Reason can be shown to the user. No error and
// no log record of this package holds a username, password, hash or client
// key; Authenticate answers ErrAuth alike for unknown users and wrong
// passwords, and spends an Argon2id computation on both.
//
// # Memory
//
// Each Argon2id computation holds m KiB (64 MiB by default). The Manager
// runs at most MaxConcurrentHashes (default GOMAXPROCS) at once, so
// a burst of logins holds limit × m of hash memory instead of burst × m.
//
// # Performance
//
// A login costs one Argon2id computation (about 0.1–0.2 s with the
// defaults on a 2-core machine); Hash and Verify add nothing measurable to
// argon2.IDKey. 100 concurrent logins peaked at 128 MiB of live heap with
// MaxConcurrentHashes 2, within the bound limit × m + 64 MiB = 192 MiB. The
// name and password rules cost 1–21 µs a registration, at most 0.01% of
// one hash. The method and the full figures are in BENCHMARKS.md.
package account
