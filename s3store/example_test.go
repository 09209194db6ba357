package s3store_test

import (
	"context"
	"log"
	"os"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	bolt "go.etcd.io/bbolt"

	"chatbx.eu/privacy/s3store"
	"chatbx.eu/privacy/upload"
)

// An upload.Service whose files live in an S3 bucket, with credentials from
// the environment.
func Example() {
	client, err := minio.New("s3.example.org", &minio.Options{
		Creds:  credentials.NewStaticV4(os.Getenv("S3_ACCESS_KEY"), os.Getenv("S3_SECRET_KEY"), ""),
		Secure: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	blobs, err := s3store.New(client, "chat-uploads", s3store.Options{Prefix: "upload/"})
	if err != nil {
		log.Fatal(err)
	}
	if err := blobs.EnsureBucket(context.Background()); err != nil {
		log.Fatal(err)
	}
	db, err := bolt.Open("upload.db", 0o600, nil)
	if err != nil {
		log.Fatal(err)
	}
	meta, err := upload.NewBoltMetaStore(db)
	if err != nil {
		log.Fatal(err)
	}
	svc, err := upload.NewService(meta, blobs, upload.Config{BaseURL: "https://upload.example.org/upload"})
	if err != nil {
		log.Fatal(err)
	}
	_ = svc // mount svc (an http.Handler) and run svc.Expire on a schedule
}
