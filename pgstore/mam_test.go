package pgstore

import (
	"testing"

	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/mam/mamtest"
)

func TestMAMStore(t *testing.T) {
	mamtest.TestStore(t, func(t *testing.T) mam.Store {
		s, err := NewMAMStore(t.Context(), newPool(t), MAMConfig{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// The same contract with each append committed on its own.
func TestMAMStoreNoGroupCommit(t *testing.T) {
	mamtest.TestStore(t, func(t *testing.T) mam.Store {
		s, err := NewMAMStore(t.Context(), newPool(t), MAMConfig{GroupCommit: -1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
