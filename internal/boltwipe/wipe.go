// Package boltwipe overwrites the free pages of an open bbolt database, so
// that the bytes of deleted keys and values no longer exist in the file.
//
// bbolt never writes a page in place: every commit writes the pages it
// changed into pages taken from the freelist (or appended to the file), and
// the pages they replace join the freelist with their old bytes intact.
// Deleted data therefore stays readable in free pages until a later commit
// happens to reuse them. Wipe makes that reuse happen on purpose: in a few
// ordinary write transactions it fills a scratch bucket with zero values,
// one leaf per page, until every free page has been taken, then deletes the
// scratch bucket. Each page bbolt writes is built in a zero-filled buffer,
// so a reused page holds only the scratch leaf and zeros. The pages freed by
// the wipe itself are old versions of pages that are live at the time, so
// they hold nothing that was deleted before Wipe began.
//
// The package doc of chatbx.eu/privacy/retention states the guarantees
// and limits.
package boltwipe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ScratchBucket is the name of the top-level bucket Wipe creates while it
// runs and deletes before it returns. Stores must not use it.
var ScratchBucket = []byte("\x00chatbx.eu/privacy/boltwipe")

// ErrReadersOpen is returned when read transactions stayed open through
// every attempt, so pages freed before Wipe began may still be pinned by
// them (bbolt keeps such pages aside until the readers end). Retry later.
var ErrReadersOpen = errors.New("boltwipe: read transactions kept freed pages pinned")

// Options tunes Wipe. The zero value is the default.
type Options struct {
	// PagesPerTx bounds the pages written by one transaction, and so the
	// memory used (one page size each) and the time other writers wait. 0
	// means 1024 (4 MiB with 4 KiB pages; about 0.1 s per transaction on
	// the benchmark machine, see the retention package doc).
	PagesPerTx int

	// Attempts bounds how many times Wipe waits for read transactions
	// to end before it returns ErrReadersOpen. 0 means 50.
	Attempts int

	// Wait is called between attempts that found read transactions open;
	// nil means a short sleep (1 ms, doubling up to 100 ms) that ends
	// early with ctx.
	Wait func(ctx context.Context, attempt int) error

	// Progress, if set, is called after each fill transaction with the
	// pages overwritten so far.
	Progress func(pages int)
}

// Wipe overwrites every page that is free in db when Wipe is called
// (including pages still pending release), and the bytes of the file past
// bbolt's high-water mark, with zeros. db stays open and usable: other
// writers run between Wipe's transactions. It returns the number of pages
// overwritten (an estimate when other writers commit at the same time).
func Wipe(ctx context.Context, db *bolt.DB) (pages int, err error) {
	return WipeOptions(ctx, db, Options{})
}

// WipeOptions is Wipe with options.
func WipeOptions(ctx context.Context, db *bolt.DB, o Options) (pages int, err error) {
	if o.PagesPerTx <= 0 {
		o.PagesPerTx = 1024
	}
	if o.Attempts <= 0 {
		o.Attempts = 50
	}
	if o.Wait == nil {
		o.Wait = sleep
	}
	// DB.Info reads the memory map without a lock: call it inside a read
	// transaction, which keeps writers from remapping meanwhile.
	var pageSize int
	if err := db.View(func(tx *bolt.Tx) error { pageSize = tx.DB().Info().PageSize; return nil }); err != nil {
		return 0, fmt.Errorf("boltwipe: %w", err)
	}
	w := wiper{db: db, perLeaf: 8}
	// A leaf page holds a 16-byte header and, per element, a 16-byte
	// element header, the key and the value: 8 elements fill one page.
	w.value = make([]byte, max((pageSize-16)/w.perLeaf-16-8, 1))

	defer func() {
		// Drop the scratch bucket even when cancelled or failing: its pages
		// hold only zeros. A crash leaves it behind; the next Wipe drops it.
		if derr := w.dropScratch(); derr != nil && err == nil {
			err = derr
		}
	}()

	n, err := w.scrubTail()
	pages += n
	if err != nil {
		return pages, err
	}

	clean := false
	waits := 0
	for round := 1; ; round++ {
		if err := ctx.Err(); err != nil {
			return pages, err
		}
		st := db.Stats()
		// Every write transaction begins by releasing the pending pages
		// that no open reader can still see. Round 1 releases those freed
		// up to the last commit before Wipe, unless a reader older than
		// that commit is open. From round 2 on, once no reader is open, no
		// reader can be that old: one that begins now sees a later commit.
		readers := st.OpenTxN > 0
		if round >= 2 && !clean {
			if readers {
				if st.FreePageN == 0 {
					// Nothing to fill until the readers end.
					waits++
					if waits >= o.Attempts {
						return pages, ErrReadersOpen
					}
					if err := o.Wait(ctx, waits); err != nil {
						return pages, err
					}
					continue
				}
			} else {
				clean = true
			}
		}
		// Pages pending at the last close are released when this
		// transaction begins, unless a reader still sees them. Before the
		// wipe is clean, a reader may be pinning many of them (the very
		// pages it waits for): counting them would only grow the file, and
		// growing it may need a new memory map, which waits for every
		// reader to end. Once clean, the pending pages are mostly those the
		// previous fill freed itself, and must be counted, or every round
		// would leave them free and call for another.
		avail, extra := st.FreePageN, 0
		if !readers || clean {
			avail += st.PendingPageN
		}
		if !readers {
			// A few extra pages make sure the leaves, which are allocated
			// before the branch and freelist pages, take every free page
			// even if another writer freed some since the stats were taken.
			extra = 16
		}
		leaves, err := w.fill(min(avail+extra, o.PagesPerTx))
		if err != nil {
			return pages, err
		}
		pages += min(leaves, avail)
		if o.Progress != nil {
			o.Progress(pages)
		}
		if db.Stats().FreePageN > 0 {
			continue // more free pages than one transaction takes
		}
		if clean {
			return pages, nil
		}
	}
}

type wiper struct {
	db      *bolt.DB
	perLeaf int
	value   []byte
	next    uint64
}

// fill writes `pages` leaf pages of zeros into the scratch bucket in one
// transaction and returns the number of leaves written.
func (w *wiper) fill(pages int) (int, error) {
	err := w.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(ScratchBucket)
		if err != nil {
			return err
		}
		b.FillPercent = 1.0
		if k, _ := b.Cursor().Last(); len(k) == 8 {
			w.next = binary.BigEndian.Uint64(k) + 1
		}
		var key [8]byte
		for range pages * w.perLeaf {
			binary.BigEndian.PutUint64(key[:], w.next)
			w.next++
			if err := b.Put(key[:], w.value); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("boltwipe: fill: %w", err)
	}
	return pages, nil
}

func (w *wiper) dropScratch() error {
	err := w.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(ScratchBucket) == nil {
			return nil
		}
		return tx.DeleteBucket(ScratchBucket)
	})
	if err != nil {
		return fmt.Errorf("boltwipe: drop scratch bucket: %w", err)
	}
	return nil
}

// scrubTail zeroes the file past the high-water mark. bbolt grows the file
// ahead of use and never reads past the mark, but a commit that crashed
// after writing its pages and before its meta page leaves those pages there.
// It runs inside a write transaction, so no writer can move the mark
// meanwhile, and rolls it back: it changes nothing bbolt knows about.
func (w *wiper) scrubTail() (pages int, err error) {
	tx, err := w.db.Begin(true)
	if err != nil {
		return 0, fmt.Errorf("boltwipe: %w", err)
	}
	defer tx.Rollback()
	hwm := tx.Size()
	f, err := os.OpenFile(w.db.Path(), os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("boltwipe: open for tail scrub: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("boltwipe: %w", cerr)
		}
	}()
	pageSize := int64(w.db.Info().PageSize)
	buf := make([]byte, 256*pageSize)
	zero := make([]byte, pageSize)
	for off := hwm; ; {
		n, rerr := f.ReadAt(buf, off)
		for p := int64(0); p < int64(n); p += pageSize {
			chunk := buf[p:min(p+pageSize, int64(n))]
			if bytes.Equal(chunk, zero[:len(chunk)]) {
				continue
			}
			if _, err := f.WriteAt(zero[:len(chunk)], off+p); err != nil {
				return pages, fmt.Errorf("boltwipe: tail scrub: %w", err)
			}
			pages++
		}
		off += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return pages, fmt.Errorf("boltwipe: tail scrub: %w", rerr)
		}
	}
	if pages > 0 {
		if err := f.Sync(); err != nil {
			return pages, fmt.Errorf("boltwipe: tail scrub: %w", err)
		}
	}
	return pages, nil
}

func sleep(ctx context.Context, attempt int) error {
	d := time.Millisecond << min(attempt-1, 7)
	t := time.NewTimer(min(d, 100*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
