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
// configuration.
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
// BoltPurge (and PurgeJob, a Job around it) removes that residue in place,
// while the database stays open and in use. It runs internal/boltwipe.Wipe,
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
// what writing the free space once costs (see the benchmark below).
//
// Limits. The wipe works at the level of the file. Out of its reach:
// copies in the OS page cache until they are evicted, physical blocks that
// an SSD's flash translation layer or a copy-on-write filesystem (btrfs,
// ZFS) or LVM/filesystem snapshots keep after the rewrite, swap, and
// backups — full-disk encryption, TRIM, and the retention of backups
// answer those. A read transaction that began before the deletion pins the
// deleted pages: the purge waits briefly (up to 50 times, 1 to 100 ms) and
// then fails with ErrReadersOpen, and the scheduler retries it with
// backoff; stores should keep read transactions short. Like any bbolt
// writer, a purge that has to grow the memory map waits for open readers,
// so it must never be called by a goroutine that holds a read transaction.
// The file does not shrink: wiped pages stay in the freelist and are
// reused. The scratch bucket name (boltwipe.ScratchBucket, starting with a
// NUL byte) is reserved, and is briefly visible to code iterating the root
// buckets. A database opened read-only cannot be purged.
//
// # Performance
//
// A purge costs a write of every free page, in transactions of 1024 pages
// (4 MiB) by default, so other writers wait at most one such transaction.
// On the shared 2-core development VM (AMD EPYC, virtual disk), for a
// database built from 1 GiB of values of 1 to 16 KiB of which every other
// one was then deleted (file 1731 MiB, 1151 MiB of it free), two runs of
//
//	RETENTION_BIG=1 go test -run '^$' -bench Wipe1GiB -benchtime 1x -v ./internal/boltwipe/
//
// measured, against baselines in the same run:
//
//	                                     run 1                 run 2
//	wipe, 1024 pages/tx (default)   9.0 s  128 MiB/s       12.4 s   93 MiB/s   longest tx 126 / 204 ms
//	wipe, 8192 pages/tx            10.4 s  111 MiB/s       10.4 s  111 MiB/s   longest tx 928 / 495 ms
//	wipe,  256 pages/tx                 —                  27.2 s   42 MiB/s   longest tx 329 ms
//	write 1151 MiB of zeros + fsync 4.3 s  268 MiB/s        7.8 s  149 MiB/s
//	bolt.Compact to a new file      5.4 s  (of 1731 MiB)    4.9 s
//
// so the default purge takes 1.6–2.1× the time of writing the free bytes
// once (the floor for any wipe), and 1.7–2.5× a compaction of the same file
// (which copies only the ~580 MiB live, then would still need the swap and
// reopen described above). The disk is shared with other jobs, and figures
// vary by up to 2× between runs. The cost scales with the free space, not
// with the live data, and is paid on every run: bbolt hands out free pages
// lowest first, so a purge cannot tell the pages freed since the last run
// from those it already wiped, and rewrites them all. A file with 1 GiB
// free, purged every 10 minutes, is rewritten about 144 times a day (about
// 10 s of disk writes each time here): choose the interval with the free
// space in mind (DB.Stats().FreePageN).
package retention
