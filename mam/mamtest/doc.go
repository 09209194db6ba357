// Package mamtest checks implementations of mam.Store against the contract
// (TestStore) and provides MemStore, an in-memory reference Store for tests.
package mamtest
