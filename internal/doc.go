// Package internal holds no code itself. Its sub-directories hold what only
// this module may import:
//
//   - boltwipe overwrites the free pages of an open bbolt database, so that
//     deleted data no longer exists in the file (retention.BoltPurge runs
//     it);
//   - tools/exports is a command that counts the exported identifiers of
//     the library's packages: go run ./internal/tools/exports.
package internal
