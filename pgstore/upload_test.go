package pgstore

import (
	"testing"

	"chatbx.eu/privacy/upload"
	"chatbx.eu/privacy/upload/uploadtest"
)

func TestUploadMetaStore(t *testing.T) {
	uploadtest.TestMetaStore(t, func(t *testing.T) upload.MetaStore {
		s, err := NewUploadMetaStore(t.Context(), newPool(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
