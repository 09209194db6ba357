// Package accounttest checks implementations of account.Store against the
// contract (TestStore: one named subtest per clause) and provides MemStore,
// an in-memory reference Store for tests and examples whose zero value is
// ready to use.
//
// A new backend proves itself with:
//
//	func TestStore(t *testing.T) {
//		accounttest.TestStore(t, func(t *testing.T) account.Store { return newStore(t) })
//	}
package accounttest
