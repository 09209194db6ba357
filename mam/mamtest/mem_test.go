package mamtest_test

import (
	"testing"

	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
)

func TestMemStore(t *testing.T) {
	mamtest.TestStore(t, func(*testing.T) mam.Store { return mamtest.NewMemStore() })
}

func TestMemStoreEraseGroupMessages(t *testing.T) {
	mamtest.TestStore(t, func(*testing.T) mam.Store {
		s := mamtest.NewMemStore()
		s.EraseGroupMessages = true
		return s
	})
}
