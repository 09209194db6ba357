package uploadtest_test

import (
	"testing"

	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

func TestMemMeta(t *testing.T) {
	uploadtest.TestMetaStore(t, func(*testing.T) upload.MetaStore { return uploadtest.NewMemMeta() })
}

func TestZeroMemMeta(t *testing.T) {
	uploadtest.TestMetaStore(t, func(*testing.T) upload.MetaStore { return new(uploadtest.MemMeta) })
}

func TestMemBlobs(t *testing.T) {
	uploadtest.TestBlobStore(t, func(*testing.T) upload.BlobStore { return uploadtest.NewMemBlobs() })
}

func TestZeroMemBlobs(t *testing.T) {
	uploadtest.TestBlobStore(t, func(*testing.T) upload.BlobStore { return new(uploadtest.MemBlobs) })
}
