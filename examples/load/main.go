// Command load measures an XMPP server from the client side: it registers
// users (XEP-0077, or reads them from a file), runs one scenario and prints
// throughput, latency percentiles and, given the server's process id, the
// server's CPU time and memory from /proc. It speaks only standard XMPP
// (mellium.im/xmpp clients over TLS), so the same run measures any server;
// bench/peer.sh at the repository root runs it against the example server
// and Prosody and prints the ratios.
//
// Scenarios:
//
//	pipelined  one sender pipelines -n chat messages to a contact
//	senders    -k senders, each pipelining -n/-k messages to its own contact
//	rooms      -k occupants of a new room each send -n/-k groupchat messages
//	mam        -n archived messages, then the recipient pages through its
//	           archive with RSM pages of -page (each page timed)
//	upload     -n XEP-0363 slots and HTTPS PUTs of -size bytes, -k at a time
//	idle       -k sessions logged in; the server's RSS growth per session
//
// A hop's latency is the time from the sender's write to the recipient's
// read: the body carries the send time on this process's monotonic clock.
// With -rate the senders are open-loop: each message has a scheduled send
// time (the total rate spread evenly over the senders), a sender that falls
// behind sends at once, and the hop is timed from the scheduled time, so a
// server that queues cannot hide it by slowing the senders (coordinated
// omission). Without -rate the senders are closed-loop (as fast as the
// server takes them, or -window in flight each), and under saturation the
// hop latency is mostly queueing (Little's law: messages in flight over the
// rate).
//
// With -sm every session enables XEP-0198 stream management after binding
// and answers the server's <r/> with its count of handled stanzas.
//
// Usage:
//
//	load -addr 127.0.0.1:5222 -domain localhost -insecure -archive -scenario pipelined -n 10000 -server-pid PID
//	load -compare ours.json theirs.json
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	addr, domain    string
	directTLS       bool
	insecure        bool
	caFile          string
	scenario        string
	n, k, window    int
	rate            float64
	sm              bool
	page, pages     int
	size            int64
	archive         bool
	usersFile       string
	prefix          string
	password        string
	register        bool
	conc            int
	serverPID       int
	label           string
	name            string
	jsonOut         bool
	timeout         time.Duration
	uploadService   string
	mucService      string
	httpAddr        string
	compare         bool
	compareA, compB string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:5222", "client listener of the server (host:port)")
	fs.StringVar(&o.domain, "domain", "localhost", "XMPP domain")
	fs.BoolVar(&o.directTLS, "tls", false, "direct TLS (XEP-0368) on -addr instead of STARTTLS")
	fs.BoolVar(&o.insecure, "insecure", false, "accept any server certificate (self-signed test servers only)")
	fs.StringVar(&o.caFile, "cafile", "", "PEM certificates to trust instead of the system's")
	fs.StringVar(&o.scenario, "scenario", "pipelined", "pipelined, senders, rooms, mam, upload or idle")
	fs.IntVar(&o.n, "n", 1000, "messages (pipelined, senders, rooms, mam) or uploads")
	fs.IntVar(&o.k, "k", 8, "senders, occupants, concurrent uploads or idle sessions")
	fs.IntVar(&o.window, "window", 0, "most messages a sender has in flight (0: no limit; 1: one at a time, the idle latency)")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: messages per second in total across the senders, on a schedule; hops timed from the scheduled send time (0: closed loop)")
	fs.BoolVar(&o.sm, "sm", false, "enable XEP-0198 stream management on every session")
	fs.IntVar(&o.page, "page", 50, "mam: RSM page size")
	fs.IntVar(&o.pages, "pages", 0, "mam: stop after this many pages (0: the whole archive)")
	fs.Int64Var(&o.size, "size", 1<<20, "upload: bytes per file")
	fs.BoolVar(&o.archive, "archive", false, "turn the archive on (XEP-0441 default always) for every user")
	fs.StringVar(&o.usersFile, "users", "", "file of existing accounts, one \"user password\" a line (instead of registering)")
	fs.StringVar(&o.prefix, "user-prefix", "load", "registered users are <prefix>1, <prefix>2, …")
	fs.StringVar(&o.password, "password", "load-test-password", "password of the registered users")
	fs.BoolVar(&o.register, "register", true, "register the users first (XEP-0077; existing accounts are kept)")
	fs.IntVar(&o.conc, "conc", 4, "registrations and logins at a time")
	fs.IntVar(&o.serverPID, "server-pid", 0, "server process to sample in /proc (CPU, RSS); 0: none")
	fs.StringVar(&o.label, "label", "server", "name of the server in the output")
	fs.StringVar(&o.name, "name", "", "name of the run in the output and in -compare (default: the scenario)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "bound of each wait (answers, deliveries)")
	fs.StringVar(&o.uploadService, "upload-service", "", "upload service JID (default: found with disco)")
	fs.StringVar(&o.mucService, "muc-service", "", "rooms service (default: conference.<domain>)")
	fs.StringVar(&o.httpAddr, "http-addr", "", "send every HTTPS request to this host:port (upload hosts that do not resolve here)")
	fs.BoolVar(&o.compare, "compare", false, "print two JSON result files (arguments: ours theirs) side by side with ratios")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.compare {
		if fs.NArg() != 2 {
			return o, errors.New("-compare takes two JSON files")
		}
		o.compareA, o.compB = fs.Arg(0), fs.Arg(1)
		return o, nil
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.n < 1 || o.k < 1:
		return o, errors.New("-n and -k must be at least 1")
	case o.page < 1:
		return o, errors.New("-page must be at least 1")
	case o.size < 0 || o.size > 1<<30:
		return o, errors.New("-size must be between 0 and 1 GiB")
	case o.timeout <= 0:
		return o, errors.New("-timeout must be positive")
	case o.rate < 0 || o.rate > 1e7 || o.rate != o.rate:
		return o, errors.New("-rate must be between 0 and 10,000,000 messages per second")
	}
	return o, nil
}

// usersNeeded is how many accounts a scenario uses.
func usersNeeded(o options) (int, error) {
	switch o.scenario {
	case "pipelined", "mam":
		return 2, nil
	case "senders":
		return 2 * o.k, nil
	case "rooms", "idle":
		return o.k, nil
	case "upload":
		return 1, nil
	}
	return 0, fmt.Errorf("unknown scenario %q", o.scenario)
}

func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.compare {
		return compare(stdout, o.compareA, o.compB)
	}
	need, err := usersNeeded(o)
	if err != nil {
		return err
	}
	tlsCfg := &tls.Config{ServerName: o.domain, MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.insecure} //nolint:gosec // -insecure is for self-signed test servers
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no PEM certificate", o.caFile)
		}
		tlsCfg.RootCAs = pool
	}
	r := &run{
		tg:   target{Addr: o.addr, Domain: o.domain, DirectTLS: o.directTLS, TLS: tlsCfg, Timeout: o.timeout, SM: o.sm},
		opts: o,
		http: httpClient(o.httpAddr, tlsCfg, o.timeout),
	}
	defer r.http.CloseIdleConnections()
	if o.usersFile != "" {
		if r.accts, err = readUsers(o.usersFile); err != nil {
			return err
		}
		if len(r.accts) < need {
			return fmt.Errorf("scenario %s needs %d users, %s has %d", o.scenario, need, o.usersFile, len(r.accts))
		}
	} else {
		for i := range need {
			r.accts = append(r.accts, account{User: fmt.Sprintf("%s%d", o.prefix, i+1), Password: o.password})
		}
		if o.register {
			if err := r.registerAll(ctx); err != nil {
				return err
			}
		}
	}
	res := result{Server: o.label, Scenario: o.scenario, Users: need, Rate: o.rate, SM: o.sm}
	if o.name != "" {
		res.Scenario = o.name
	}
	err = r.scenario(ctx, &res)
	r.closeAll()
	if err != nil {
		res.Error = err.Error()
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return jerr
		}
	} else {
		printResult(stdout, res)
	}
	return err
}

func (r *run) scenario(ctx context.Context, res *result) error {
	switch r.opts.scenario {
	case "pipelined":
		return r.pairs(ctx, res, 1)
	case "senders":
		return r.pairs(ctx, res, r.opts.k)
	case "rooms":
		return r.rooms(ctx, res, r.opts.k)
	case "mam":
		return r.mam(ctx, res)
	case "upload":
		return r.upload(ctx, res, r.opts.k)
	case "idle":
		return r.idle(ctx, res, r.opts.k)
	}
	return fmt.Errorf("unknown scenario %q", r.opts.scenario)
}

// registerAll registers every account, conc at a time.
func (r *run) registerAll(ctx context.Context) error {
	sem := make(chan struct{}, max(1, r.opts.conc))
	errs := make(chan error, len(r.accts))
	for _, a := range r.accts {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- r.tg.register(ctx, a)
		}()
	}
	var first error
	for range r.accts {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// readUsers reads "user password" lines; blank lines and lines starting
// with # are skipped.
func readUsers(path string) ([]account, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []account
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		u, p, ok := strings.Cut(s, " ")
		if !ok || u == "" || strings.TrimSpace(p) == "" {
			return nil, fmt.Errorf("%s:%d: want \"user password\"", path, line)
		}
		out = append(out, account{User: u, Password: strings.TrimSpace(p)})
	}
	return out, sc.Err()
}

// printResult writes res as a two-column table.
func printResult(w io.Writer, res result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, row := range rows(res) {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	tw.Flush()
}

func rows(res result) [][2]string {
	out := [][2]string{
		{"server", res.Server},
		{"scenario", res.Scenario},
		{"users", fmt.Sprint(res.Users)},
		{"seconds", fmt.Sprintf("%.3f", res.Seconds)},
	}
	add := func(k, v string) { out = append(out, [2]string{k, v}) }
	if res.Messages > 0 {
		add("messages (or pages, files)", fmt.Sprint(res.Messages))
	}
	if res.Delivered > 0 || res.Bounced > 0 {
		add("delivered", fmt.Sprint(res.Delivered))
		add("bounced", fmt.Sprint(res.Bounced))
	}
	if res.Rate > 0 {
		add("scheduled rate (open loop)", fmt.Sprintf("%.1f/s", res.Rate))
	}
	if res.SM {
		add("stream management", "XEP-0198 on")
	}
	if res.PerSecond > 0 {
		add("per second", fmt.Sprintf("%.1f", res.PerSecond))
	}
	if res.Latency.N > 0 {
		add("latency p50 / p90 / p99 / max", fmt.Sprintf("%.0f / %.0f / %.0f / %.0f µs (n=%d)",
			res.Latency.P50us, res.Latency.P90us, res.Latency.P99us, res.Latency.MaxUs, res.Latency.N))
	}
	if res.MBps > 0 {
		add("MB/s", fmt.Sprintf("%.1f", res.MBps))
	}
	if res.ServerCPU > 0 {
		add("server CPU", fmt.Sprintf("%.2f s", res.ServerCPU))
	}
	if res.CPUPerMessage > 0 {
		add("server CPU per message", fmt.Sprintf("%.0f µs", res.CPUPerMessage))
	}
	if res.RSSEndKiB > 0 {
		add("server RSS start / end / peak", fmt.Sprintf("%d / %d / %d KiB", res.RSSStartKiB, res.RSSEndKiB, res.HWMKiB))
	}
	if res.PerSessionKiB != 0 {
		add("server RSS per session", fmt.Sprintf("%.1f KiB", res.PerSessionKiB))
	}
	if res.Error != "" {
		add("error", res.Error)
	}
	return out
}
