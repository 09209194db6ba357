// Package uploadtest checks implementations of upload.MetaStore and
// upload.BlobStore against their contracts (TestMetaStore, TestBlobStore,
// in the style of testing/fstest.TestFS: one named subtest per clause) and
// provides MemMeta and MemBlobs, in-memory reference stores for tests whose
// zero values are ready to use.
//
// A new backend proves itself with:
//
//	func TestMetaStore(t *testing.T) {
//		uploadtest.TestMetaStore(t, func(t *testing.T) upload.MetaStore { return newStore(t) })
//	}
package uploadtest
