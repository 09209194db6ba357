package accounttest_test

import (
	"testing"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/account/accounttest"
)

func TestMemStore(t *testing.T) {
	accounttest.TestStore(t, func(*testing.T) account.Store { return accounttest.NewMemStore() })
}

func TestZeroMemStore(t *testing.T) {
	accounttest.TestStore(t, func(*testing.T) account.Store { return new(accounttest.MemStore) })
}
