package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"chatbx.eu/privacy/internal/apitest"
	"chatbx.eu/privacy/retention"
)

// maxExports bounds the package's top-level exported names. Each one is
// needed by a server (examples/server wires NewScheduler, Job, PurgeJob,
// ExpirerFunc and renders the PrivacyReport with HumanDuration), by a
// package whose data has a promised lifetime (Expirer, DefaultInterval and
// DefaultJitter give the worst case its MaxAge must allow for), or by a
// caller branching on an error. A new one replaces an old one or raises
// this bound with a reason.
const maxExports = 20

func TestExportCount(t *testing.T) { apitest.ExportCount(t, ".", maxExports) }

// TestNamingScheme: the constructor refuses an unusable configuration with
// an error wrapping ErrConfig, as every package of the library does, and a
// purge job over no database is such a configuration (not a panic).
func TestNamingScheme(t *testing.T) {
	noop := retention.ExpirerFunc(func(context.Context, time.Time) (int, error) { return 0, nil })
	for _, tc := range []struct {
		name string
		jobs []retention.Job
	}{
		{"job without a name", []retention.Job{{Expirer: noop}}},
		{"duplicate name", []retention.Job{{Name: "a", Expirer: noop}, {Name: "a", Expirer: noop}}},
		{"job without an Expirer", []retention.Job{{Name: "a"}}},
		{"negative MaxAge", []retention.Job{{Name: "a", Expirer: noop, MaxAge: -time.Second}}},
		{"purge job over a nil database", []retention.Job{retention.PurgeJob("purge", nil, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := retention.NewScheduler(retention.Config{Jobs: tc.jobs}); !errors.Is(err, retention.ErrConfig) {
				t.Fatalf("NewScheduler = %v, want an error wrapping ErrConfig", err)
			}
		})
	}
}
