package retention

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// PrivacyReport lists, for every configured job, the kind of data it
// deletes, the lifetime of that data and the latest time at which it is
// deleted. Generated from the jobs actually configured, it is the source of
// a provider's data-retention statement and a check against it.
type PrivacyReport struct {
	Entries []Entry
}

// Entry is one line of a PrivacyReport.
type Entry struct {
	Job      string        // Job.Name
	Data     string        // Job.Data
	Lifetime time.Duration // Job.MaxAge
	Interval time.Duration // Job.Interval (after defaults)

	// DeletedWithin is the longest time data is kept while the job
	// succeeds: Lifetime + Interval·(1+jitter), plus the duration of a run.
	DeletedWithin time.Duration

	// Last is the latest run of the job, if known.
	Last *Report
}

// NewPrivacyReport builds the report for the jobs of cfg (with the same
// defaults as NewScheduler) and the last known runs, matched by job name
// (last may be nil). Invalid jobs are reported as they are; NewScheduler
// would reject them.
func NewPrivacyReport(cfg Config, last []Report) PrivacyReport {
	jitter := cfg.Jitter
	if jitter == 0 {
		jitter = DefaultJitter
	} else if jitter < 0 {
		jitter = 0
	}
	return buildReport(cfg.Jobs, jitter, last)
}

// PrivacyReport returns the report for the scheduler's jobs, with the last
// run of each job that has run.
func (s *Scheduler) PrivacyReport() PrivacyReport {
	return buildReport(s.configured(), s.jitter, s.LastReports())
}

func buildReport(jobs []Job, jitter float64, last []Report) PrivacyReport {
	byJob := make(map[string]Report, len(last))
	for _, r := range last {
		byJob[r.Job] = r
	}
	r := PrivacyReport{Entries: make([]Entry, 0, len(jobs))}
	for _, j := range jobs {
		iv := j.Interval
		if iv == 0 {
			iv = DefaultInterval
		}
		e := Entry{
			Job:           j.Name,
			Data:          j.Data,
			Lifetime:      j.MaxAge,
			Interval:      iv,
			DeletedWithin: j.MaxAge + iv + time.Duration(jitter*float64(iv)),
		}
		if l, ok := byJob[j.Name]; ok {
			e.Last = &l
		}
		r.Entries = append(r.Entries, e)
	}
	return r
}

// Check reports whether the job named job deletes its data within the
// promised time. It returns an error wrapping ErrNotEnforced if there is no
// such job, or ErrPromiseBroken if the job may keep data longer.
func (r PrivacyReport) Check(job string, within time.Duration) error {
	for _, e := range r.Entries {
		if e.Job != job {
			continue
		}
		if e.DeletedWithin > within {
			return fmt.Errorf("%w: job %q deletes within %s, promised %s",
				ErrPromiseBroken, job, HumanDuration(e.DeletedWithin), HumanDuration(within))
		}
		return nil
	}
	return fmt.Errorf("%w: no job %q", ErrNotEnforced, job)
}

// Markdown renders the report as a Markdown table, suitable for a privacy
// policy page. Errors of failed runs are not shown (only "failed"): the
// table may be public.
func (r PrivacyReport) Markdown() string {
	var b strings.Builder
	b.WriteString("| Data | Lifetime | Deleted at the latest after | Enforced by | Runs every | Last run |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, e := range r.Entries {
		lifetime := HumanDuration(e.Lifetime)
		if e.Lifetime == 0 {
			lifetime = "until the next run"
		}
		last := "not yet"
		if e.Last != nil {
			last = e.Last.Start.UTC().Format("2006-01-02 15:04 UTC")
			if e.Last.Err != nil {
				last += ", failed"
			} else {
				last += fmt.Sprintf(", %d removed", e.Last.Removed)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | `%s` | %s | %s |\n",
			mdCell(e.Data), lifetime, HumanDuration(e.DeletedWithin),
			strings.ReplaceAll(mdCell(e.Job), "`", "'"), HumanDuration(e.Interval), last)
	}
	return b.String()
}

// mdCell escapes s for a Markdown table cell.
func mdCell(s string) string {
	if s == "" {
		return "—"
	}
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '\\', '|', '*', '_', '[', ']', '<', '>', '#':
			b.WriteByte('\\')
			b.WriteRune(c)
		case '\n', '\r', '\t':
			b.WriteByte(' ')
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// MarshalJSON encodes the report for tools: durations in whole seconds
// and as text, the last run with its error text.
func (r PrivacyReport) MarshalJSON() ([]byte, error) {
	type entry struct {
		Job              string  `json:"job"`
		Data             string  `json:"data"`
		LifetimeSeconds  int64   `json:"lifetime_seconds"`
		Lifetime         string  `json:"lifetime"`
		IntervalSeconds  int64   `json:"interval_seconds"`
		DeletedWithinSec int64   `json:"deleted_within_seconds"`
		DeletedWithin    string  `json:"deleted_within"`
		Last             *Report `json:"last_run,omitempty"`
	}
	out := struct {
		Entries []entry `json:"retention"`
	}{Entries: make([]entry, 0, len(r.Entries))}
	for _, e := range r.Entries {
		out.Entries = append(out.Entries, entry{
			Job:              e.Job,
			Data:             e.Data,
			LifetimeSeconds:  int64(e.Lifetime / time.Second),
			Lifetime:         HumanDuration(e.Lifetime),
			IntervalSeconds:  int64(e.Interval / time.Second),
			DeletedWithinSec: int64((e.DeletedWithin + time.Second - 1) / time.Second),
			DeletedWithin:    HumanDuration(e.DeletedWithin),
			Last:             e.Last,
		})
	}
	return json.Marshal(out)
}

// HumanDuration formats d in days, hours, minutes and seconds ("30 days",
// "1 day 2 hours", "10 minutes"), rounded up to the second so that a
// promise is never understated. Markdown uses it; a server that renders the
// report its own way (examples/server's privacy page) does too.
func HumanDuration(d time.Duration) string {
	if d <= 0 {
		return "0 seconds"
	}
	d = (d + time.Second - 1).Truncate(time.Second)
	units := []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}}
	var parts []string
	for _, u := range units {
		n := d / u.d
		if n == 0 {
			continue
		}
		d -= n * u.d
		s := fmt.Sprintf("%d %s", n, u.name)
		if n != 1 {
			s += "s"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}
