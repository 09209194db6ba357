package account

import (
	"context"
	"time"
)

// Record is an account as a Store keeps it.
type Record struct {
	// Username is the PRECIS-normalized localpart (UsernameCaseMapped,
	// RFC 8265): "Alice" is stored as "alice". It is the primary key.
	Username string
	// Skeleton is the confusable Skeleton of Username (see Skeleton and
	// SkeletonVersion), indexed by the Store: no two accounts may have
	// the same one. "" means none (not indexed).
	Skeleton string
	// Hash is the Argon2id PHC string of the password; never the password.
	Hash string
	// Created is when the account was registered.
	Created time.Time
	// Blocked marks a restriction of processing (GDPR Art. 18): the data is
	// kept and login is refused.
	Blocked bool
	// Deleting is set, in the same transaction that writes the journal
	// entry, when deletion starts: from then on the account cannot log in
	// and its name cannot be registered.
	Deleting bool
	// Profile holds the fields the user may correct.
	Profile Profile
}

// Profile holds the personal data a user may correct. It asks for no e-mail
// address and no real name: a pseudonym is welcome.
type Profile struct {
	// Nickname is how the user wants to be called (XEP-0172); any
	// pseudonym.
	Nickname string `json:"nickname,omitempty"`
}

// Erasure is a deletion in progress, kept in the Store's journal until
// every Holder erased the user's data.
type Erasure struct {
	// Username is the normalized localpart being erased. The journal needs
	// it to call the Holders again after a crash; the entry is removed
	// when the erasure is finished.
	Username string
	// Started is when the deletion was requested.
	Started time.Time
	// Done lists the names of the Holders that have erased the user.
	Done []string
	// Attempts counts the runs that ended with at least one Holder failing.
	Attempts int
}

// Tombstone reserves the name of a deleted account until Expires, so nobody
// can impersonate a deleted user to their contacts. It holds a keyed HMAC of
// the Skeleton of the normalized name (of the name itself for tombstones
// written before skeletons), never the name.
type Tombstone struct {
	Key     []byte
	Expires time.Time
}

// Store persists accounts, the deletion journal, tombstones and the
// manager's secrets. Each method is one logical transaction. A Store is
// safe for concurrent use by multiple goroutines (and, for shared backends,
// by multiple processes).
//
// Skeletons: a Store indexes Record.Skeleton. A backend whose data
// predates skeletons fills them in (account.Skeleton of each Username,
// for every record), and computes them again when SkeletonVersion changes;
// until then it would let look-alikes of old names register. Old data may
// hold two accounts with one skeleton: both stay, a third is refused.
//
// Error rules: methods that look up a single item return an error wrapping
// ErrNotFound when it does not exist; Create and BeginErasure return an
// error wrapping ErrExists on a conflict. Values passed in and returned are
// copies: the caller may modify them freely. A method called with a
// context that is already done fails with an error wrapping ctx.Err() and
// changes nothing. Implementations never log usernames or hashes.
//
// accounttest.TestStore checks an implementation against this contract.
type Store interface {
	// Create adds r. It fails with ErrExists if an account with
	// r.Username exists (deleting or not), if r.Skeleton is not "" and an
	// account with the same Skeleton exists (deleting or not), or if a
	// tombstone with key tombstone exists whose Expires is after
	// r.Created; the checks and the insert are atomic.
	Create(ctx context.Context, r Record, tombstone []byte) error

	// Get returns the account username, including one being deleted.
	Get(ctx context.Context, username string) (Record, error)

	// Update loads the account username, calls fn with it and, if fn
	// returns nil, stores the modified record, all in one transaction. fn
	// must not change Username, Skeleton or Deleting (Update then fails
	// without writing); fn's error is returned as is. fn may be called more than
	// once on backends that retry transactions.
	Update(ctx context.Context, username string, fn func(*Record) error) error

	// BeginErasure sets Deleting on the account e.Username and adds e to
	// the journal, atomically. It fails with ErrNotFound if the account
	// does not exist and with ErrExists if it is already being deleted.
	BeginErasure(ctx context.Context, e Erasure) error

	// Erasures returns every journal entry, oldest Started first.
	Erasures(ctx context.Context) ([]Erasure, error)

	// UpdateErasure replaces the journal entry for e.Username (progress).
	// It fails with ErrNotFound if there is none.
	UpdateErasure(ctx context.Context, e Erasure) error

	// FinishErasure removes the account username (its Skeleton from the
	// index too) and its journal entry and stores t, atomically. It fails with ErrNotFound if there is no
	// journal entry for username.
	FinishErasure(ctx context.Context, username string, t Tombstone) error

	// Tombstone returns the tombstone with the given key, expired or not.
	Tombstone(ctx context.Context, key []byte) (Tombstone, error)

	// ExpireTombstones removes the tombstones whose Expires is before
	// before, and reports how many.
	ExpireTombstones(ctx context.Context, before time.Time) (int, error)

	// LoadOrStoreSecret returns the secret stored under name; if there is
	// none, it stores value and returns it. Concurrent callers with
	// different values all get the one that was stored first.
	LoadOrStoreSecret(ctx context.Context, name string, value []byte) ([]byte, error)
}
