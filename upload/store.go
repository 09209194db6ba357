package upload

import (
	"context"
	"io"
	"time"
)

// State is the life-cycle state of a Record.
type State uint8

// Record states. A slot request creates a Reserved record (it counts against
// the owner's quota until the slot expires); the first PUT claims it
// (Uploading), and a complete upload makes it Stored.
const (
	StateReserved  State = 1
	StateUploading State = 2
	StateStored    State = 3
)

// Record is the metadata of one slot or stored file.
type Record struct {
	ID          string    // random, URL-safe, ≥ 128 bits; also the blob key
	Owner       string    // the owner's bare JID, or the opaque Grant.Owner of a granted slot ("" for none)
	Filename    string    // sanitized file name shown in the GET URL
	ContentType string    // normalized media type, "" when the client gave none
	Size        int64     // exact size in bytes
	Created     time.Time // slot request time; upload time once Stored
	Expires     time.Time // slot deadline while Reserved/Uploading; deletion time once Stored
	State       State
}

// MetaStore keeps file metadata. Implementations must be safe for concurrent
// use; every method is one logical transaction. Errors for a missing record
// wrap ErrNotFound. uploadtest.TestMetaStore checks the contract. On SQL,
// Reserve is one transaction that locks the owner (SELECT … FOR UPDATE on a
// per-owner row) before listing; Claim and Commit are conditional UPDATEs
// (WHERE state = …) whose affected-row count decides the winner.
//
// The store keeps indexes by Expires and by Created so that Expiring and
// Older cost in proportion to the records they return, and an index by Owner.
type MetaStore interface {
	// Reserve atomically lists the owner's records, calls admit with them
	// and, if admit returns nil, inserts r. An error from admit is returned
	// unchanged and nothing is inserted. Two concurrent Reserve calls for
	// one owner are serialized, so admit always sees the other's record.
	// Inserting an existing ID fails.
	Reserve(ctx context.Context, r Record, admit func(existing []Record) error) error

	// Claim moves a Reserved record to Uploading, sets its Expires to
	// deadline (updating the expiry index: the upload may outlive the slot's
	// validity) and returns it. Exactly one of several concurrent claims of
	// an ID succeeds; the others get an error wrapping ErrSlotUsed.
	Claim(ctx context.Context, id string, deadline time.Time) (Record, error)

	// Commit moves an Uploading record to Stored with the given upload time
	// and expiry, updating the expiry index.
	Commit(ctx context.Context, id string, created, expires time.Time) error

	// Get returns a record.
	Get(ctx context.Context, id string) (Record, error)

	// Delete removes records; missing IDs are ignored.
	Delete(ctx context.Context, ids ...string) error

	// ByOwner returns every record of a bare JID, in any state.
	ByOwner(ctx context.Context, owner string) ([]Record, error)

	// Expiring returns up to limit records with Expires before t, oldest
	// expiry first.
	Expiring(ctx context.Context, t time.Time, limit int) ([]Record, error)

	// Older returns up to limit records with Created before t, oldest
	// first.
	Older(ctx context.Context, t time.Time, limit int) ([]Record, error)
}

// BlobStore keeps file contents under keys chosen by the Service (random
// IDs, never user input). Implementations must be safe for concurrent use.
// uploadtest.TestBlobStore checks the contract.
//
// Three optional methods are used when present: RemoveStale(ctx, t) (int,
// error), called by Service.Expire with now − Config.UploadTimeout to drop
// uploads a crash left unfinished; DeleteBlobs(ctx, keys...) error, which
// Expire and Erase call instead of one Delete per key; and CreateSize(ctx,
// key, size) (BlobWriter, error), which the upload handler calls instead of
// Create with the slot's exact size (a store may then stream the bytes
// without buffering them). A writer from CreateSize fails a Write that goes
// past size and a Commit before size bytes; it is otherwise a Create's.
type BlobStore interface {
	// Create starts writing a new blob. Nothing is visible to Open until
	// Commit returns nil; after Abort (or a failed Commit) nothing is left.
	Create(ctx context.Context, key string) (BlobWriter, error)

	// Open returns the committed blob and its size. A missing key yields an
	// error wrapping ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, error)

	// Delete removes a blob. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// BlobWriter receives the bytes of one blob.
type BlobWriter interface {
	io.Writer
	// Commit makes the blob durable and visible.
	Commit() error
	// Abort discards the blob. It is a no-op after a successful Commit and
	// may be called more than once.
	Abort() error
}
