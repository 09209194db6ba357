package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"chatbx.eu/privacy/account"
	"chatbx.eu/privacy/logredact"
	"chatbx.eu/privacy/mam"
	"chatbx.eu/privacy/retention"
	"chatbx.eu/privacy/upload"
	"github.com/jackc/pgx/v5/pgxpool"
	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stream"
)

// Server is a running provider. Its fields are set up by newServer and
// never reassigned after ready is called.
type Server struct {
	cfg  Config
	ctx  context.Context // canceled at shutdown
	log  *slog.Logger    // operational log (stderr); never IPs
	tls  *tls.Config
	cert *x509.Certificate

	connLog  *slog.Logger // connection log: time, user, anonymized IP
	redact   *logredact.Handler
	xmppLog  *logredact.RotatingFile // connection log files, 24 h
	httpLog  *logredact.RotatingFile // HTTP error log files, 30 days
	errorLog *log.Logger             // http.Server.ErrorLog, through the scrubber

	manager       *account.Manager
	mamStore      mam.Store        // PostgreSQL with -store, else mam.db
	holders       []account.Holder // erased on an account's deletion
	pool          *pgxpool.Pool    // -store; nil means bbolt (stores.go)
	uploads       *upload.Service
	scheduler     *retention.Scheduler
	stopScheduler func()

	c2sLn, c2sTLSLn, httpLn net.Listener
	httpSrv                 *http.Server
	httpMux                 *http.ServeMux
	baseURL                 string // https://domain:port

	db       *bolt.DB  // server.db: rosters, rooms
	dbs      []namedDB // every bbolt file, for the purge job
	store    *serverStore
	sessions *registry
	muc      *mucService
	pep      *pepService   // XEP-0163, pep.go
	archiver *mam.Archiver // every routed message goes through it
	sm       *smTable      // XEP-0198 resumable sessions (sm.go)
	readBufs *sync.Pool    // read buffers of client connections while busy (byteconn.go)
	s2s      *s2sService   // federation; nil when -s2s is empty (s2s.go)

	private *privateStore   // XEP-0049 (private.go)
	vcards  *vcardStore     // XEP-0054 (vcard.go)
	offline *offlineService // XEP-0160 (offline.go)

	userMux   *mux.ServeMux // IQs to the account, the server or a room archive
	uploadMux *mux.ServeMux // IQs to upload.<domain>

	closers []func() error // run in reverse order at shutdown

	limiter    *connLimiter // c2s connection caps
	refused    *summaryLog  // refused c2s connections, a line a second
	acceptErrs *summaryLog  // c2s accept failures, a line a second
	failures   *failureLog  // failed negotiations, refused stanzas (neglog.go)
	// sleep waits out an accept back-off; nil means a timer (tests
	// record the delays instead).
	sleep func(context.Context, time.Duration)

	mu          sync.Mutex
	conns       map[net.Conn]struct{}
	negotiating map[net.Conn]struct{} // the conns not bound yet
	down        bool
	wg          sync.WaitGroup // listeners and connections
	bg          sync.WaitGroup // background purges
}

// C2SAddr is the address of the STARTTLS client listener.
func (srv *Server) C2SAddr() string { return srv.c2sLn.Addr().String() }

// C2STLSAddr is the address of the direct TLS client listener ("" if off).
func (srv *Server) C2STLSAddr() string {
	if srv.c2sTLSLn == nil {
		return ""
	}
	return srv.c2sTLSLn.Addr().String()
}

// BaseURL is the base of the HTTPS server, https://domain:port.
func (srv *Server) BaseURL() string { return srv.baseURL }

// Certificate is the server certificate (self-signed unless -cert).
func (srv *Server) Certificate() *x509.Certificate { return srv.cert }

// run starts the server with cfg, calls ready (if not nil) once every
// listener accepts, and serves until ctx is canceled; then it shuts down:
// listeners closed, sessions ended with system-shutdown, stores synced
// and closed. With cfg.Purge it runs every retention job once and returns.
func run(ctx context.Context, cfg Config, ready func(*Server)) (err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &Server{
		cfg:      cfg,
		ctx:      ctx,
		sessions: newRegistry(),
		readBufs: newReadBufPool(),
		conns:    make(map[net.Conn]struct{}),
	}
	srv.sm = newSMTable(srv)
	defer func() {
		if cerr := srv.closeAll(); err == nil {
			err = cerr
		}
	}()
	if err := srv.open(); err != nil {
		return err
	}
	if cfg.Purge {
		// No listener: the base URL only names the upload service.
		_, port, _ := net.SplitHostPort(cfg.HTTP)
		srv.baseURL = "https://" + net.JoinHostPort(cfg.Domain, port)
	} else if err := srv.listen(); err != nil {
		return err
	}
	if err := srv.wire(ctx); err != nil {
		return err
	}
	if cfg.Purge {
		return srv.purge(ctx)
	}
	srv.start()
	if ready != nil {
		ready(srv)
	}
	<-ctx.Done()
	return srv.shutdown()
}

// open creates the data directories, loads the certificate and opens every
// store and log file.
func (srv *Server) open() error {
	cfg := srv.cfg
	for _, dir := range []string{cfg.DataDir, cfg.LogDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	cert, err := loadCertificate(cfg)
	if err != nil {
		return err
	}
	srv.cert, err = x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("parse certificate: %w", err)
	}
	srv.tls = tlsConfig(cert)
	if err := srv.openLogs(); err != nil {
		return err
	}
	srv.db, err = srv.openDB("server.db")
	if err != nil {
		return err
	}
	if srv.store, err = newServerStore(srv.db); err != nil {
		return err
	}
	pepStore, err := newPEPStore(srv.db)
	if err != nil {
		return err
	}
	if srv.pep, err = newPEPService(srv, pepStore); err != nil {
		return err
	}
	srv.muc, err = newMUCService(srv)
	return err
}

// openDB opens a bbolt file (0600) of the data directory, closed at exit
// and listed for the purge job.
func (srv *Server) openDB(name string) (*bolt.DB, error) {
	// InitialMmapSize: the file is mapped once for its first 64 MiB (address
	// space, not memory), so writers do not remap it while it grows. That
	// also keeps the purge job's unlocked read of the mapping (DB.Info in
	// internal/boltwipe) from racing a remap.
	db, err := bolt.Open(filepath.Join(srv.cfg.DataDir, name), 0o600, &bolt.Options{
		Timeout:         5 * time.Second,
		InitialMmapSize: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	srv.closers = append(srv.closers, db.Close)
	srv.dbs = append(srv.dbs, namedDB{name: name, db: db})
	return db, nil
}

// openDB opens a bbolt file for tests of the stores.
func openDB(path string) (*bolt.DB, error) {
	return bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
}

// listen opens the listeners.
func (srv *Server) listen() error {
	var err error
	if srv.c2sLn, err = net.Listen("tcp", srv.cfg.C2S); err != nil {
		return fmt.Errorf("-c2s: %w", err)
	}
	srv.closers = append(srv.closers, ignoreClosed(srv.c2sLn.Close))
	if srv.cfg.C2STLS != "" {
		if srv.c2sTLSLn, err = net.Listen("tcp", srv.cfg.C2STLS); err != nil {
			return fmt.Errorf("-c2s-tls: %w", err)
		}
		srv.closers = append(srv.closers, ignoreClosed(srv.c2sTLSLn.Close))
	}
	if srv.httpLn, err = net.Listen("tcp", srv.cfg.HTTP); err != nil {
		return fmt.Errorf("-http: %w", err)
	}
	srv.closers = append(srv.closers, ignoreClosed(srv.httpLn.Close))
	if srv.cfg.S2S != "" {
		if srv.s2s, err = newS2S(srv); err != nil {
			return err
		}
		if srv.s2s.ln = srv.cfg.s2sListener; srv.s2s.ln == nil {
			if srv.s2s.ln, err = net.Listen("tcp", srv.cfg.S2S); err != nil {
				return fmt.Errorf("-s2s: %w", err)
			}
		}
		srv.closers = append(srv.closers, ignoreClosed(srv.s2s.ln.Close))
		if srv.s2s.tlsLn = srv.cfg.s2sTLSListener; srv.s2s.tlsLn == nil && srv.cfg.S2STLS != "" {
			if srv.s2s.tlsLn, err = net.Listen("tcp", srv.cfg.S2STLS); err != nil {
				return fmt.Errorf("-s2s-tls: %w", err)
			}
		}
		if srv.s2s.tlsLn != nil {
			srv.closers = append(srv.closers, ignoreClosed(srv.s2s.tlsLn.Close))
		}
	}
	_, port, _ := net.SplitHostPort(srv.httpLn.Addr().String())
	srv.baseURL = "https://" + net.JoinHostPort(srv.cfg.Domain, port)
	return nil
}

func ignoreClosed(f func() error) func() error {
	return func() error {
		if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}

// start serves the listeners in the background.
func (srv *Server) start() {
	srv.limiter = newConnLimiter(srv.cfg.MaxConns, srv.cfg.MaxConnsPerIP)
	srv.refused = newSummaryLog(srv.log, "c2s connections refused over a cap")
	srv.acceptErrs = newSummaryLog(srv.log, "c2s accept failed; backing off")
	srv.failures = newFailureLog(srv.connLog, srv.log)
	srv.wg.Add(1)
	go srv.serveC2S(srv.c2sLn, false)
	if srv.c2sTLSLn != nil {
		srv.wg.Add(1)
		go srv.serveC2S(srv.c2sTLSLn, true)
	}
	if srv.s2s != nil {
		srv.wg.Add(1)
		go srv.s2s.serveS2S(srv.s2s.ln, false)
		if srv.s2s.tlsLn != nil {
			srv.wg.Add(1)
			go srv.s2s.serveS2S(srv.s2s.tlsLn, true)
		}
	}
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		err := srv.httpSrv.Serve(tls.NewListener(srv.httpLn, srv.tls))
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			srv.log.Error("https", "err", err)
		}
	}()
	srv.startBackground()
}

// track registers a live connection, negotiating; false when shutting
// down.
func (srv *Server) track(c net.Conn) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.down {
		return false
	}
	srv.conns[c] = struct{}{}
	if srv.negotiating == nil {
		srv.negotiating = make(map[net.Conn]struct{})
	}
	srv.negotiating[c] = struct{}{}
	return true
}

// trackBound marks a connection bound: shutdown ends it through its
// session from now on.
func (srv *Server) trackBound(c net.Conn) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	delete(srv.negotiating, c)
}

func (srv *Server) untrack(c net.Conn) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	delete(srv.conns, c)
	delete(srv.negotiating, c)
}

// shutdown closes the listeners, ends every session with system-shutdown,
// waits for the connections (closing stragglers after 5 s) and stops HTTP.
func (srv *Server) shutdown() error {
	srv.mu.Lock()
	srv.down = true
	for c := range srv.negotiating {
		// Wakes the negotiation's read; it ends the stream with
		// system-shutdown.
		_ = c.SetReadDeadline(time.Unix(1, 0))
	}
	srv.mu.Unlock()
	_ = srv.c2sLn.Close()
	if srv.c2sTLSLn != nil {
		_ = srv.c2sTLSLn.Close()
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	herr := srv.httpSrv.Shutdown(hctx)
	srv.stopBackground()
	if srv.s2s != nil {
		srv.s2s.shutdown() // queued stanzas bounced while sessions still exist
	}
	for _, s := range srv.sessions.all() {
		s.end(stream.SystemShutdown)
	}
	done := make(chan struct{})
	go func() { srv.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		srv.mu.Lock()
		for c := range srv.conns {
			c.Close() // connections still negotiating
		}
		srv.mu.Unlock()
		<-done
	}
	srv.sm.closeAll() // parked XEP-0198 sessions: their messages bounced
	srv.bg.Wait()
	srv.refused.stop()
	srv.acceptErrs.stop()
	srv.failures.stop()
	return herr
}

// closeAll runs the closers in reverse order.
func (srv *Server) closeAll() error {
	var errs []error
	for i := len(srv.closers) - 1; i >= 0; i-- {
		errs = append(errs, srv.closers[i]())
	}
	srv.closers = nil
	return errors.Join(errs...)
}
