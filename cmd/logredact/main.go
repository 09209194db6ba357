// Command logredact anonymizes the IP addresses in the logs of an XMPP
// server that is not built on this library (Prosody, ejabberd): it reads
// log lines from standard input, a named pipe or a log file it follows
// across rotations, replaces every IPv4 and IPv6 address with the
// logredact package's Scrubber (truncation to /24 and /48 by default, or
// daily pseudonyms, or a marker), and writes hourly files that it deletes
// once their lines are older than the maximum age (24 hours by default).
// A maintenance window, opened through a control socket for at most
// -max-reveal, lets lines through in full between two audit records.
//
// Usage:
//
//	logredact [flags]                      filter
//	logredact -control PATH reveal 30m REASON...
//	logredact -control PATH conceal|status
//
// See README.md for the Prosody and ejabberd configuration and the
// systemd unit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"chatbx.eu/privacy/logredact"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "logredact:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// config is the command line.
type config struct {
	in          string
	follow      bool
	fromStart   bool
	poll        time.Duration
	out         string
	name        string
	period      time.Duration
	maxAge      time.Duration
	expireEvery time.Duration
	opts        logredact.Options
	control     string
	now         func() time.Time
}

func parseFlags(args []string) (*config, []string, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("logredact", flag.ContinueOnError)
	fs.StringVar(&cfg.in, "in", "-", "log to read: a file, a named pipe, or - for standard input")
	fs.BoolVar(&cfg.follow, "follow", false, "follow -in like tail -F: wait for more at its end, survive rotation by rename or truncation")
	fs.BoolVar(&cfg.fromStart, "from-start", false, "with -follow, read what the file holds already (default: only new lines)")
	fs.DurationVar(&cfg.poll, "poll", time.Second, "with -follow, how often to look for new lines at the end of the file")
	fs.StringVar(&cfg.out, "out", "", "directory of the anonymized log files (mode 0700, files 0600); empty: standard output, no expiry")
	fs.StringVar(&cfg.name, "name", "xmpp", "start of the file names: NAME-2026-12-05T06.log")
	fs.DurationVar(&cfg.period, "period", time.Hour, "how long one file collects lines (whole minutes)")
	fs.DurationVar(&cfg.maxAge, "max-age", 24*time.Hour, "no line is kept longer than this")
	fs.DurationVar(&cfg.expireEvery, "expire-every", 10*time.Minute, "how often to delete expired files")
	mode := fs.String("mode", "truncate", "truncate (IPv4 /24, IPv6 /48), pseudonymize (ipcrypt-pfx, key changing daily) or drop")
	fs.IntVar(&cfg.opts.IPv4Bits, "ipv4-bits", 24, "IPv4 prefix kept by truncate")
	fs.IntVar(&cfg.opts.IPv6Bits, "ipv6-bits", 48, "IPv6 prefix kept by truncate")
	fs.DurationVar(&cfg.opts.MaxReveal, "max-reveal", 24*time.Hour, "longest maintenance window")
	fs.StringVar(&cfg.control, "control", "", "Unix socket for the maintenance window (created mode 0600); empty: no window can be opened")
	if err := fs.Parse(args); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	switch *mode {
	case "truncate":
		cfg.opts.Mode = logredact.Truncate
	case "pseudonymize":
		cfg.opts.Mode = logredact.Pseudonymize
	case "drop":
		cfg.opts.Mode = logredact.Drop
	default:
		return nil, nil, fmt.Errorf("%w: -mode %q: truncate, pseudonymize or drop", errUsage, *mode)
	}
	if cfg.follow && cfg.in == "-" {
		return nil, nil, fmt.Errorf("%w: -follow needs -in FILE", errUsage)
	}
	if cfg.poll <= 0 || cfg.expireEvery <= 0 || cfg.maxAge <= 0 {
		return nil, nil, fmt.Errorf("%w: -poll, -expire-every and -max-age must be positive", errUsage)
	}
	if cfg.opts.IPv4Bits < 0 || cfg.opts.IPv4Bits > 32 || cfg.opts.IPv6Bits < 0 || cfg.opts.IPv6Bits > 128 {
		return nil, nil, fmt.Errorf("%w: -ipv4-bits 0..32, -ipv6-bits 0..128", errUsage)
	}
	return cfg, fs.Args(), nil
}

// run is the program: a control command when args after the flags name
// one, else the filter until the input ends or ctx does.
func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	cfg, rest, err := parseFlags(args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		if cfg.control == "" {
			return fmt.Errorf("%w: %q needs -control PATH", errUsage, rest[0])
		}
		return controlClient(cfg.control, rest, stdout)
	}
	return cfg.filter(ctx, stdin, stdout, nil, nil)
}

// filter runs the filter. wait replaces the follower's polling and ticks
// the expiry timer when not nil (tests).
func (cfg *config) filter(ctx context.Context, stdin io.Reader, stdout io.Writer,
	wait func(context.Context) error, ticks <-chan time.Time) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var out io.Writer = stdout
	var expiry chan error
	if cfg.out != "" {
		rf, err := logredact.OpenRotating(logredact.RotateConfig{
			Dir: cfg.out, Name: cfg.name, Period: cfg.period, MaxAge: cfg.maxAge, Now: cfg.now,
		})
		if err != nil {
			return err
		}
		defer rf.Close()
		out = rf
		if ticks == nil {
			t := time.NewTicker(cfg.expireEvery)
			defer t.Stop()
			ticks = t.C
		}
		expiry = make(chan error, 1)
		go func() { expiry <- expireLoop(ctx, rf, cfg.expireEvery, cfg.now, ticks) }()
	}
	opts := cfg.opts
	opts.Now = cfg.now
	f := newFilter(out, &opts)

	if cfg.control != "" {
		ln, err := listenControl(cfg.control)
		if err != nil {
			return err
		}
		defer ln.Close()
		go serveControl(ctx, ln, f)
	}

	var in io.Reader = stdin
	closeIn := func() error { return nil }
	if cfg.in != "-" {
		if wait == nil {
			wait = pollEvery(cfg.poll)
		}
		if cfg.follow {
			fl, err := openFollower(ctx, cfg.in, cfg.fromStart, wait)
			if err != nil {
				return err
			}
			defer fl.Close()
			in, closeIn = fl, fl.Close
		} else {
			file, err := os.Open(cfg.in)
			if err != nil {
				return err
			}
			defer file.Close()
			in, closeIn = file, file.Close
		}
	}
	copied := make(chan error, 1)
	go func() { copied <- copyLines(f, in) }()
	var cerr error
	select {
	case cerr = <-copied:
	case <-ctx.Done():
		// Shutting down: closing a file or a named pipe ends a read that
		// waits for a writer; standard input cannot be interrupted, what
		// came from it is written out.
		if in != stdin {
			_ = closeIn()
			cerr = <-copied
		}
	}
	if ctx.Err() != nil && (errors.Is(cerr, ctx.Err()) || errors.Is(cerr, os.ErrClosed)) {
		cerr = nil
	}
	cancel()
	err := errors.Join(cerr, f.Close())
	if expiry != nil {
		err = errors.Join(err, <-expiry)
	}
	return err
}

// copyLines copies r to f in reads of 256 KiB until r ends.
func copyLines(f *filter, r io.Reader) error {
	buf := make([]byte, 256<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := f.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// expireLoop deletes the expired files of rf at once and on every tick
// until ctx ends, with a cutoff that keeps the -max-age promise between two
// runs (RotatingFile.RetentionMaxAge).
func expireLoop(ctx context.Context, rf *logredact.RotatingFile, every time.Duration, now func() time.Time, ticks <-chan time.Time) error {
	keep := rf.RetentionMaxAge(every)
	if now == nil {
		now = time.Now
	}
	for {
		if _, err := rf.Expire(ctx, now().Add(-keep)); err != nil && ctx.Err() == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticks:
		}
	}
}
