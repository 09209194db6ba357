package pgstore_test

import (
	"context"
	"log"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/pgstore"
	"chatbx.eu/privacy/upload"
	"github.com/jackc/pgx/v5/pgxpool"
)

// One pool serves the three stores; each creates its tables on first use.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "host=/run/postgresql dbname=xmpp")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	var archive mam.Store
	if archive, err = pgstore.NewMAMStore(ctx, pool, pgstore.MAMConfig{}); err != nil {
		log.Fatal(err)
	}
	var meta upload.MetaStore
	if meta, err = pgstore.NewUploadMetaStore(ctx, pool); err != nil {
		log.Fatal(err)
	}
	var accounts account.Store
	if accounts, err = pgstore.NewAccountStore(ctx, pool); err != nil {
		log.Fatal(err)
	}
	// Hand them to mam.NewArchiver, upload.NewService and
	// account.NewManager in place of the bbolt stores.
	_, _, _ = archive, meta, accounts
}
