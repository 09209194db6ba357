// Package upload implements the service side of XEP-0363 HTTP File Upload:
// signed single-use slots, an http.Handler that stores and serves files
// safely, per-user quotas, and expiry of files after 30 days.
//
// # Wiring
//
// A Service is built from a MetaStore (metadata: BoltMetaStore, or any backend
// passing uploadtest.TestMetaStore), a BlobStore (contents: FSBlobStore, or any
// backend passing uploadtest.TestBlobStore) and a Config whose zero fields are
// the private defaults (100 MiB per file, files kept 30 days, 1 GiB and 500
// slots per user per day, 2 GiB stored per user, slots valid 300 s):
//
//	db, _ := bolt.Open("data/upload.db", 0o600, nil)
//	meta, _ := upload.NewBoltMetaStore(db)
//	blobs, _ := upload.NewFSBlobStore("data/upload")
//	svc, err := upload.NewService(meta, blobs, upload.Config{
//		BaseURL: "https://example.org:5443/upload",
//		Key:     key, // ≥ 32 bytes, shared by every node; nil: random per process
//	})
//	httpsMux.Handle("/upload/", svc)                          // HTTPS side
//	uploadMux := mux.New(stanza.NSClient, upload.Handle(svc)) // IQs to upload.example.org
//	accountCfg.Holders = append(accountCfg.Holders, svc)      // account.Config: Name, Export, Erase
//	jobs = append(jobs, retention.Job{Name: "uploads", Data: "uploaded files",
//		Expirer: svc, Interval: 10 * time.Minute, MaxAge: svc.RetentionMaxAge(10 * time.Minute)})
//
// The same *Service is the http.Handler, the mux.IQHandler (slot requests and
// disco#info of the upload JID), an account Holder and a retention Expirer:
// its Name, Export, Erase and Expire methods have the signatures that the
// account package's Holder and the retention package's Expirer interfaces
// declare, so it is passed to both without an adapter. The retention job's
// MaxAge comes from RetentionMaxAge, not TTL: a job deletes what is older
// than MaxAge only when it runs, so with MaxAge TTL a file could outlive its
// TTL by up to the job's interval and jitter, and a privacy report's Check
// of a TTL promise fails. Serve Handle(svc) on a mux
// dedicated to the upload service's JID (or HandleRequests next to mellium's
// disco.Handle): DiscoInfo describes that JID
// (identity store/file, feature urn:xmpp:http:upload:0, and the XEP-0128 form
// with max-file-size). The requester is iq.From, which the server must have
// overwritten with the authenticated JID.
//
// # Slots and tokens
//
// RequestSlot checks the size against MaxFileSize (ErrTooLarge, answered
// not-acceptable with <file-too-large/>), reserves the size against both
// quotas in the same MetaStore transaction that lists the user's files, so
// two concurrent requests cannot together exceed a quota (ErrQuota, answered
// resource-constraint with <retry stamp/>), and returns a slot whose PUT and
// GET URL is BaseURL/<id>/<name>: id is 144 random bits, name is
// the file name made safe (path separators, control and bidi characters
// removed, at most 255 bytes). A reserved slot that is never used stops
// counting when it expires; a failed upload releases its quota at once. A PUT
// must start within the slot's 300 s and finish within Config.UploadTimeout
// (1 h).
//
// The PUT is authorized by the header "Authorization: Bearer <token>" (one of
// the three header names XEP-0363 allows), not by a URL parameter, so the
// token never lands in access logs or browser history. The token is
// HMAC-SHA256 over the slot id, size, expiry and keyed hashes of the owner and
// content type: it contains no name. It is checked with hmac.Equal against
// Config.Key and then Config.PreviousKey, so keys rotate without failing
// uploads in flight.
//
// # HTTP
//
// PUT: HTTPS only (403; behind a TLS-terminating proxy set
// TrustForwardedProto), 401 without a token, 403 for a forged token, one for
// another slot or another file name, 410 after the slot's 300 s, 409 for a
// slot already used (also when two PUTs race: exactly one wins), 400 for a
// content type other than the slot's or a short body, 413 for a long one (at
// most size+1 bytes are read), 408 for one slower than the minimum rate
// (below), 5xx when storage fails; nothing is kept after any failure and the
// slot is spent once its body started to be read. 201 on success. GET/HEAD: 200 with Content-Length, Content-Type, ETag,
// "Cache-Control: public, max-age=<remaining lifetime>, immutable",
// "X-Content-Type-Options: nosniff", "Content-Security-Policy: default-src
// 'none'; frame-ancestors 'none'", Content-Disposition inline for image/*
// (except SVG), audio/*, video/* and text/plain, attachment otherwise, with
// the file name encoded by mime.FormatMediaType; Range via http.ServeContent
// (206/416) for a Range of at most 8 ranges that do not overlap
// (so they add up to at most the file's size); any other Range header (more
// ranges, overlapping or malformed ones, any Range on an empty file) is
// ignored as RFC 9110 §14.2 allows, and the whole file is served with 200:
// a request for 1,000 one-byte ranges of a 1,000-byte file gets the 1,000
// bytes, not 144 KB of multipart headers. 404 for a missing, expired (even
// before Expire runs) or erased file. Every response carries "Access-Control-Allow-Origin: *"; OPTIONS
// answers the CORS preflight (methods GET, HEAD, PUT, OPTIONS; headers
// Authorization, Content-Type). No response ever sets a cookie. Bodies are
// streamed in 256 KiB chunks, never buffered whole.
//
// # Slow clients
//
// A transfer must keep moving: Config.MinRate (32 KiB) per Config.RateWindow
// (30 s), about 1 KiB/s, in both directions. The handler sets the
// connection's read deadline (PUT) or write deadline (GET) a window ahead
// through http.ResponseController when the request starts, and moves it a
// window ahead each time MinRate more bytes have moved; so a client that
// sends or reads fewer than MinRate bytes within a window is cut. A cut PUT
// is answered 408 and, like every failed PUT, keeps nothing and spends its
// slot; a cut GET ends with the connection closed. The read deadline is
// cleared at the end of the body and the write deadline when the GET ends,
// so neither outlives its transfer; the read deadline of a refused PUT
// stays, bounding what net/http reads of the rest of its body. Besides,
// Config.UploadTimeout (1 h) bounds a whole upload. This is why an HTTP
// server in front of the handler needs no ReadTimeout or WriteTimeout
// (which would cut large transfers at a fixed time whatever their rate):
// ReadHeaderTimeout and IdleTimeout suffice.
//
// # Slots granted by another server
//
// ServeGranted stores and serves a slot that another XMPP server signed
// (cmd/uploadd verifies Prosody's and ejabberd's tokens and passes a
// Grant): the file is named by a keyed hash of the slot's URL path, counts
// against Grant.Owner's quotas (507 when exhausted), is deleted at the
// earlier of Grant.Expires and upload time + TTL, and is erased by Erase
// (an owner that is a bare JID) or EraseOwner (any other owner key). Every
// other promise of the HTTP side above holds for it.
//
// # Storage and expiry
//
// FSBlobStore writes each upload to a temporary file in its directory, fsyncs,
// renames it to the random id and fsyncs the directory; an aborted or failed
// upload removes its temporary file, and Expire removes temporary files a
// crash left behind for over an hour. Files are 0600, the directory 0700,
// and keys that are not ids are refused, so no path can be formed.
//
// BoltMetaStore keeps records by id plus owner, expiry and creation indexes.
// Expire(ctx, before) deletes, contents first and then metadata, every file
// past its lifetime, every slot that expired unused, every upload that
// outlived UploadTimeout (a crash mid-upload), and every record
// created before `before` (retention passes now − max age), walking the
// indexes from the oldest in batches of 1000. Erase deletes all of a user's
// files at once and is idempotent. Export writes a zip: manifest.json (a JSON
// array of ExportEntry) and files/<id>/<name> with each file's contents.
//
// # Performance
//
// A PUT or GET streams at about the speed of a plain io.Copy of the same
// bytes (256 MiB: PUT 0.99–1.40× on ext4, GET 1.17–2.06×), a 1 GiB PUT
// raises the live heap by 0.27 MiB, and Expire removes 100,000 files in
// 3.7–4.6 s. The minimum rate costs one deadline move (0.6–0.8 µs) per
// 32 KiB transferred. The method and the full figures are in BENCHMARKS.md.
package upload
