// Package internal holds no code itself. Its sub-directories hold what only
// this module may import:
//
//   - apitest holds the check of each package's api_test.go: at most so
//     many exported names (the measure of tools/exports);
//   - argon hashes and verifies passwords with Argon2id in the PHC string
//     format, with a bound on computations in flight (account uses it);
//   - boltwipe overwrites the free pages of an open bbolt database, so that
//     deleted data no longer exists in the file (retention.PurgeJob runs
//     it);
//   - prosodytest starts Debian's Prosody for interoperability tests
//     (cmd/uploadd, examples/server): its own directory, loopback ports,
//     a resolver that answers only the test's domains;
//   - testclock is a manual clock for the tests' Config.Now (account,
//     upload, the root promises test);
//   - xmlutil reads element content from untrusted stanzas with bounds on
//     text length and nesting (account, mam);
//   - xmpptest drives handlers in tests as a mellium server does: a
//     negotiator for a real session, a session driver and a one-stanza
//     driver;
//   - tools/exports is a command that counts the exported identifiers of
//     the library's packages: go run ./internal/tools/exports.
package internal
