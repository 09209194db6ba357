package web

import (
	"testing"
	"time"
)

func TestLifetime(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "until you delete it"},
		{-time.Hour, "until you delete it"},
		{720 * time.Hour, "30 days"},
		{48 * time.Hour, "2 days"},
		{24 * time.Hour, "24 hours"},
		{36 * time.Hour, "36 hours"},
		{time.Hour, "1 hour"},
		{90 * time.Minute, "90 minutes"},
		{time.Minute, "1 minute"},
		{45 * time.Second, "45 seconds"},
		{1500 * time.Millisecond, "1.5s"},
	} {
		if got := lifetime(tc.d); got != tc.want {
			t.Errorf("lifetime(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
