// Package retention enforces the lifetime of stored data: a scheduler runs
// expiry jobs over anything that can drop data older than a cutoff, a
// purge job wipes the bytes that deletion leaves behind in bbolt files, and
// a report lists each kind of data, its lifetime and the job that enforces
// it.
//
// # Jobs and the scheduler
//
// A Job names a kind of data (Data, for the report), its lifetime (MaxAge)
// and an Expirer, the interface that the stores of the mam and upload
// packages satisfy without importing this package:
//
//	type Expirer interface {
//	    Expire(ctx context.Context, before time.Time) (removed int, err error)
//	}
//
// A Scheduler runs each job at start and then every Interval (10 minutes
// by default) plus up to 10 % random jitter; it never runs one job twice at
// once (Run, RunOnce and RunJob share a per-job lock), passes the cutoff
// Now() − MaxAge, retries a failed run after a backoff that doubles from
// 30 s up to the job's Interval, recovers a panicking Expirer, and logs one
// slog record per run with the job name, the count removed, the duration
// and the error text — never the data itself. Run stops with its context
// and returns once every job goroutine has ended. RunOnce runs every job
// once, in order (tools, the server's -purge flag, tests); RunJob runs one
// job now (the purge jobs after an account's erasure).
//
//	const every = 10 * time.Minute
//	s, err := retention.NewScheduler(retention.Config{Jobs: []retention.Job{
//	    // uploads is an *upload.Service, xmppLog a *logredact.RotatingFile.
//	    {Name: "uploads", Data: "uploaded files, deleted within 30 days", Expirer: uploads,
//	        Interval: every, MaxAge: uploads.RetentionMaxAge(every)},
//	    {Name: "xmpp-log", Data: "XMPP logs, no line kept over 24 hours", Expirer: xmppLog,
//	        Interval: every, MaxAge: xmppLog.RetentionMaxAge(every)},
//	    {Name: "mam", Data: "archived messages, kept a year", MaxAge: 365 * 24 * time.Hour, Expirer: archive},
//	    retention.PurgeJob("purge-mam", mamDB, every),
//	}})
//	...
//	go s.Run(ctx)
//
// MaxAge is the cutoff age, not the promise: a run removes what is older
// than MaxAge, and the next run comes up to Interval·(1 + jitter) later, so
// data may live MaxAge + Interval·(1 + jitter). To keep a promised
// lifetime, take MaxAge from the package that stores the data, which
// subtracts that gap and anything its own storage adds:
// upload.Service.RetentionMaxAge (files deleted before their TTL ends) and
// logredact.RotatingFile.RetentionMaxAge (log files hold an hour or a day of
// lines, so a line is deleted with its file's newest one). A job with
// MaxAge set to the promise itself keeps data up to about an interval too
// long, and PrivacyReport.Check says so.
//
// # The privacy report
//
// Scheduler.PrivacyReport (or NewPrivacyReport for a Config) describes the
// jobs actually configured: for each, the kind of data, its lifetime, and
// DeletedWithin = MaxAge + Interval·(1 + jitter), the longest a datum is kept
// while the job succeeds (plus the duration of a run), with the last run
// if known. Markdown renders it as a table for a privacy-policy page (the
// text of errors is left out there, as the page is public); MarshalJSON
// gives tools the figures in seconds and the last runs with their errors.
// PrivacyReport.Check(job, promised) fails with ErrPromiseBroken or
// ErrNotEnforced when the configuration would keep data longer than the
// policy promises, so a policy can be tested against the real
// configuration. The report assumes what the Expirer interface asks: that
// a run removes everything created before its cutoff. An Expirer that
// removes data in larger units keeps some of it up to one unit longer than
// the report states (a log file of one hour is removed once its newest
// line passes the cutoff, so its oldest line lives an hour more);
// logredact.RotatingFile.RetentionMaxAge leaves room for that, but the
// report still counts from the newest line.
//
// # Erasure that leaves no trace in bbolt files
//
// bbolt is copy-on-write: a commit never changes a page in place, it writes
// the changed pages to pages taken from its freelist (or appended to the
// file), and the pages they replace join the freelist with their bytes
// intact. A deleted message, account name or token therefore stays readable
// in the file until a later commit happens to reuse its page. The residue
// test in internal/boltwipe shows it on every run: after an ordinary delete,
// the deleted user's name, message bodies and tokens are still in the file.
//
// PurgeJob (a Job whose Expirer wipes a bbolt file) removes that residue
// in place, while the database stays open and in use. It runs internal/boltwipe.Wipe,
// which in a few ordinary write transactions puts zero-filled values into a
// scratch bucket, sized so that each leaf fills one page, until every free
// page has been taken; then it deletes the scratch bucket. This relies on
// three facts of bbolt v1.4.3, each read in its source and checked by the
// tests: every page a commit writes is built in a zero-filled buffer
// (DB.allocate takes it from a pool that Tx.write zeroes, or from make) and
// written whole, so a reused page keeps nothing of its previous content;
// allocation takes single pages from the freelist before growing the file,
// and a bucket's leaves are allocated before its branches and the freelist
// page; and every write transaction starts by releasing the pending pages
// that no open reader can still see. The pages the wipe itself frees are
// old versions of pages live when it ran (the root page, the scratch
// bucket's branches, the previous freelist) and so hold nothing deleted
// before the wipe; the scratch pages hold zeros and 8-byte counters. The
// bytes past the high-water mark, which bbolt never reads but where a
// commit interrupted by a crash may have written its pages, are zeroed
// too.
//
// Guarantee: when a purge returns without error, no byte of any key, value
// or bucket name that was deleted from the database before the purge began
// remains in the file, in any encoding (the tests scan the raw file for the
// plain, hex and base64 forms of markers placed in keys, small values,
// values spanning overflow pages, inline and nested buckets, per-user
// bucket names, values overwritten many times, and past the high-water
// mark; with the array and hashmap freelists, with and without
// NoFreelistSync, with writers running during the wipe), while all live data stays intact (compared key by key, and
// tx.Check passes). Erased bytes thus survive at most one purge interval
// (plus jitter and the run's own duration) after the erasure; a server runs
// the purge at start, every 10 minutes, and through RunJob after each
// account deletion. The same holds after plain expiry: list the purge job
// after the expiry jobs of the same file, and RunOnce wipes what they have
// just removed.
//
// Crash safety: each step is an ordinary bbolt transaction, so a crash at
// any point leaves a valid database with all live data; at worst a scratch
// bucket of zeros stays behind, and the next purge drops it. The tail scrub
// writes only bytes that bbolt does not reference. A test kills
// (SIGKILL) a re-executed test binary in the middle of a wipe, then checks
// the database, compares every live value, and completes the wipe.
//
// Why not the alternatives. Compaction into a fresh file with an atomic
// rename needs the *bolt.DB that the integrator opened, and that every
// store holds, to be closed and reopened: every store handle would go
// stale, and the server would stop while the copy is made; it also needs
// room for a second copy, and leaves the old file's blocks to the
// filesystem's free space, out of reach of any later wipe. Per-user keys
// destroyed on erasure (crypto-shredding) would change every store's
// format, and the destroyed keys would themselves linger in freed pages of
// the file that held them: a wipe is needed anyway. Writing zeros straight
// into the free pages through a second file handle would avoid rewriting
// pages already wiped, but bbolt's public API cannot tell a released page
// from one still pending for an open reader (Tx.Page reports both as
// "free"), and its count of open readers is updated outside the lock that
// guards them: a direct write could zero a page that a reader is about to
// read. The fill never writes a page that bbolt's own allocator has not
// handed out, so it cannot corrupt a reader; the reader count only decides
// when the wipe is complete (a stale count can at worst leave pages pinned
// by such a reader to the next run). The in-place wipe
// needs no change in any store, keeps every handle valid, and costs about
// what writing the free space once costs (see Performance).
//
// Limits. The wipe works at the level of the file. Out of its reach:
// copies in the OS page cache until they are evicted, physical blocks that
// an SSD's flash translation layer or a copy-on-write filesystem (btrfs,
// ZFS) or LVM/filesystem snapshots keep after the rewrite, swap, and
// backups — full-disk encryption, TRIM, and the retention of backups
// answer those. A read transaction that began before the deletion pins the
// deleted pages: the purge waits briefly (up to 50 times, 1 to 100 ms) and
// then fails (its error says read transactions stayed open), and the
// scheduler retries it with backoff; stores should keep read transactions short. Like any bbolt
// writer, a purge that has to grow the memory map waits for open readers,
// so it must never be called by a goroutine that holds a read transaction.
// The file does not shrink: wiped pages stay in the freelist and are
// reused. The scratch bucket name (boltwipe.ScratchBucket, starting with a
// NUL byte) is reserved, and is briefly visible to code iterating the root
// buckets. A database opened read-only cannot be purged.
//
// # Performance
//
// A purge writes every free page of the file, in transactions of 1024
// pages (4 MiB), so other writers wait at most one such transaction. It
// costs 1.6–2.1× writing the free bytes once: 9–12 s for a file with
// 1151 MiB free on a shared 2-core machine. The cost follows the free
// space, not the live data, and is paid on every run, since a purge cannot
// tell the pages it already wiped from those freed since: a file with 1 GiB
// free, purged every 10 minutes, is rewritten about 144 times a day, so
// choose the interval with the free space (DB.Stats().FreePageN) in mind.
// The method and the full figures are in BENCHMARKS.md.
package retention
