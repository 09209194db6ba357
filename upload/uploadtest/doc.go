// Package uploadtest provides conformance suites for upload's storage
// interfaces (TestMetaStore, TestBlobStore, in the style of
// testing/fstest.TestFS) and in-memory implementations (MemMeta, MemBlobs)
// that pass them.
package uploadtest
