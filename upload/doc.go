// Package upload implements the service side of XEP-0363 HTTP File Upload:
// signed single-use slots, an http.Handler that stores and serves files
// safely, per-user quotas, and expiry of files after 30 days.
package upload
