package account_test

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/account/accounttest"
	"chatbx.eu/privacy/internal/apitest"
)

// maxExports bounds the package's top-level exported names. Each one is
// needed by a server (examples/server wires NewManager, NewBoltStore,
// NewHandler, ParseQuery, NS and NSFeature and branches on the errors), a
// Store implementation or accounttest (Store, Record, Erasure, Tombstone,
// Skeleton, SkeletonVersion), or a Holder (FileExporter: a Holder whose
// export is several files, such as the example server's private XML
// storage, one file per namespace). The Argon2id toolkit lives in
// internal/argon. A new one replaces an old one or raises this bound with
// a reason.
const maxExports = 38

func TestExportCount(t *testing.T) { apitest.ExportCount(t, ".", maxExports) }

// TestNamingScheme holds the names shared by the library's packages: every
// constructor refuses an unusable configuration with an error wrapping
// ErrConfig (never a panic), bad input wraps ErrBadRequest, and
// PolicyError reaches its sentinels through Unwrap.
func TestNamingScheme(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func() error
		want []error
	}{
		{"NewManager nil store", func() error {
			_, err := account.NewManager(nil, account.Config{})
			return err
		}, []error{account.ErrConfig}},
		{"NewManager weak Params", func() error {
			_, err := account.NewManager(accounttest.NewMemStore(), account.Config{Params: account.Params{Time: 1, Memory: 1024, Threads: 1}})
			return err
		}, []error{account.ErrConfig}},
		{"NewManager Params too high", func() error {
			_, err := account.NewManager(accounttest.NewMemStore(), account.Config{Params: account.Params{Time: 65, Memory: 19 * 1024, Threads: 1}})
			return err
		}, []error{account.ErrConfig}},
		{"NewBoltStore nil database", func() error {
			_, err := account.NewBoltStore(nil)
			return err
		}, []error{account.ErrConfig}},
		{"ParseQuery of another element", func() error {
			_, err := account.ParseQuery(xml.NewDecoder(strings.NewReader("<query xmlns='jabber:iq:roster'/>")))
			return err
		}, []error{account.ErrBadRequest}},
		{"PolicyError", func() error { return &account.PolicyError{Reason: "r"} }, []error{account.ErrPolicy}},
		{"PolicyError with Err", func() error {
			return &account.PolicyError{Reason: "r", Err: account.ErrWeakPassword}
		}, []error{account.ErrPolicy, account.ErrWeakPassword}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("error %v, want one wrapping %v", err, want)
				}
			}
		})
	}
	if errors.Is(&account.PolicyError{Reason: "r"}, account.ErrWeakPassword) {
		t.Error("a PolicyError without Err matches ErrWeakPassword")
	}
	var pe *account.PolicyError
	if err := error(&account.PolicyError{Reason: "r", Err: account.ErrMixedScripts}); !errors.As(err, &pe) || pe.Reason != "r" {
		t.Errorf("errors.As(PolicyError) = %v", pe)
	}
}
