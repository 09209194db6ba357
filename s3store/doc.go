// Package s3store keeps upload's file contents in an S3-compatible bucket:
// a Store implements upload.BlobStore with github.com/minio/minio-go/v7. It
// is a module of its own (chatbx.eu/privacy/s3store), so an integrator who
// keeps files on the local disk (upload.FSBlobStore) never has minio-go in
// their module graph.
//
// Writes stream with bounded memory. upload's handler knows a PUT's size
// and calls CreateSize: a blob larger than one part is then a multipart
// upload whose parts (Options.StreamPartSize, 64 MiB by default) stream
// from the writes without being buffered. Of unknown size (Create), an
// upload in progress holds at most one part (Options.PartSize, 8 MiB by
// default; the buffer starts at 64 KiB and doubles up to one part), and
// the largest blob is 10,000 parts (78 GiB at 8 MiB). A blob that fits in
// one part is sent with one PUT at Commit; a larger one is completed by
// Commit and aborted by Abort, so nothing is visible before Commit.
//
// Reads go through upload's handler: Open makes one HEAD request for the
// size, and each Read after a Seek starts one GET with a Range header from
// that offset (pinned to the object's ETag), so a client's Range request
// fetches only the bytes it is served. Content type and disposition stay
// the handler's; nothing is redirected to a presigned URL.
//
// Deletion: upload.Service.Expire and Erase call DeleteBlobs, which sends
// DeleteObjects requests of up to 1,000 keys, and RemoveStale, which aborts
// multipart uploads that a crashed process left behind. The library's
// expiry job is the authority on lifetimes: S3 lifecycle rules count whole
// days and may run late, so none is required; one at TTL + 1 day may be
// added on the bucket as a safety net.
package s3store
