// Package pgstore keeps the data of this project's packages in PostgreSQL:
// MAMStore is a mam.Store (message archives and preferences),
// UploadMetaStore an upload.MetaStore (file metadata; the file contents
// stay in an upload.BlobStore) and AccountStore an account.Store
// (accounts, the erasure journal, tombstones and secrets). Each passes the
// conformance suite of its package (mamtest, uploadtest, accounttest)
// against a real server.
//
// It is a module of its own, chatbx.eu/privacy/pgstore, so that programs
// which do not use PostgreSQL never get its driver,
// github.com/jackc/pgx/v5, in their module graph.
//
// # Schema
//
// Each constructor creates or migrates its tables in the pool's current
// schema (the first of its search_path), under a transaction-level
// advisory lock and with a version per component in the table
// pgstore_schema, so several processes may start at once. A database
// whose version is newer than the program is refused (ErrConfig).
//
// # Several processes
//
// Several processes may share one database:
//
//   - MAMStore.Append is one statement that increments the archive's
//     sequence counter row, which stays locked until the message commits;
//     archive order is (time, sequence), and a message stamped up to
//     MAMConfig.Skew before the archive's newest takes that newest time,
//     so appends racing from several processes sort in commit order and a
//     client paging forwards with RSM never skips one.
//   - UploadMetaStore.Reserve serializes one owner's reservations with an
//     advisory lock keyed by the owner; Claim and Commit are conditional
//     updates.
//   - AccountStore runs every transaction that checks before it writes
//     (registration against names, look-alike skeletons and tombstones;
//     the start and end of an erasure) SERIALIZABLE, retried on a
//     serialization failure.
//
// # Bounded work
//
// Every query reads through an index (a test checks the plans). Expiry and
// erasure delete in statements of at most 1,000 rows, each its own
// transaction, oldest first, so an archive never has holes; the removal of
// an erased user's real JID from room archives works in the same batches.
// An erasure that fails part way may simply run again.
//
// # What stays on disk
//
// PostgreSQL deletes a row by marking it dead: its bytes stay in the table
// and index files (VACUUM frees the space without clearing it), in the
// column statistics' value samples, and in the write-ahead log (and any
// base backups and WAL archives) until those are recycled. Purge rewrites
// the stores' tables (VACUUM FULL, under an exclusive lock) and the
// statistics, which leaves the data files clean, as a scan of a real
// cluster's data directory shows (the example server's tests); the WAL,
// archives and backups are the operator's to bound (wal_recycle = off,
// retention); see README.md.
package pgstore
