package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"chatbx.eu/privacy/retention"
	"chatbx.eu/privacy/upload"
)

// config configures uploadd; parseFlags fills it from the command line.
type config struct {
	Listen      string
	AdminListen string
	BaseURL     string
	DataDir     string
	CertFile    string
	KeyFile     string
	TTL         time.Duration
	MaxFileSize int64
	ExpireEvery time.Duration
	Secrets     secrets
	AdminSecret []byte
	Component   componentConfig
	Log         *slog.Logger
	Now         func() time.Time // nil: time.Now; tests inject a clock
}

var errConfig = errors.New("uploadd: invalid configuration")

func (c config) check() error {
	switch {
	case c.BaseURL == "":
		return fmt.Errorf("%w: -base-url is required", errConfig)
	case c.DataDir == "":
		return fmt.Errorf("%w: -data is required", errConfig)
	case len(c.AdminSecret) < 16:
		return fmt.Errorf("%w: the admin secret must be at least 16 bytes", errConfig)
	case len(c.Secrets.Prosody) == 0 && len(c.Secrets.Ejabberd) == 0 && len(c.Secrets.External) == 0 && c.Component.Addr == "":
		return fmt.Errorf("%w: no protocol: give a server secret or a component", errConfig)
	case c.Component.Addr != "" && (c.Component.JID == "" || len(c.Component.Secret) == 0 || len(c.Component.Domains) == 0):
		return fmt.Errorf("%w: a component needs -component-jid, -component-secret-file and -component-domains", errConfig)
	}
	for _, s := range [][]byte{c.Secrets.Prosody, c.Secrets.Ejabberd, c.Secrets.External} {
		if len(s) > 0 && len(s) < 16 {
			return fmt.Errorf("%w: server secrets must be at least 16 bytes", errConfig)
		}
	}
	return nil
}

// app is a configured uploadd: the upload Service on its stores and the
// two HTTP handlers.
type app struct {
	cfg    config
	db     *bolt.DB
	svc    *upload.Service
	public *public
	admin  *admin

	// adminHTTP is what the admin listener serves: admin, which tests wrap
	// to learn when a request was answered.
	adminHTTP http.Handler
}

// newApp opens the data directory (metadata in upload.db, files in files/,
// the token key in key, all 0600 in a 0700 directory) and builds the
// Service. The caller closes the app.
func newApp(cfg config) (*app, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("%w: -base-url must be an https URL", errConfig)
	}
	prefix := strings.TrimRight(base.EscapedPath(), "/")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	key, err := loadKey(filepath.Join(cfg.DataDir, "key"))
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(cfg.DataDir, "upload.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("uploadd: open database: %w", err)
	}
	meta, err := upload.NewBoltMetaStore(db)
	if err == nil {
		var blobs *upload.FSBlobStore
		if blobs, err = upload.NewFSBlobStore(filepath.Join(cfg.DataDir, "files")); err == nil {
			domains := map[string]bool{}
			for _, d := range cfg.Component.Domains {
				domains[d] = true
			}
			var svc *upload.Service
			svc, err = upload.NewService(meta, blobs, upload.Config{
				BaseURL:     strings.TrimRight(cfg.BaseURL, "/") + "/" + componentDir,
				TTL:         cfg.TTL,
				MaxFileSize: cfg.MaxFileSize,
				Key:         key,
				Allow:       allowDomains(domains),
				Now:         cfg.Now,
			})
			if err == nil {
				adm := newAdmin(svc, cfg.AdminSecret, cfg.Log)
				return &app{
					cfg: cfg, db: db, svc: svc,
					public: &public{svc: svc, prefix: prefix, sec: cfg.Secrets, now: cfg.Now},
					admin:  adm, adminHTTP: adm,
				}, nil
			}
		}
	}
	db.Close()
	return nil, err
}

// loadKey reads the Service's token key, or makes one (32 random bytes).
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) >= 32 {
		return b, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return b, nil
}

// Close closes the database.
func (a *app) Close() error { return a.db.Close() }

// serve runs the public HTTPS server on pub, the admin server on adm, the
// expiry job and the component until ctx ends.
func (a *app) serve(ctx context.Context, pub, adm net.Listener, tlsCfg *tls.Config) error {
	sched, err := retention.NewScheduler(retention.Config{
		Logger: a.cfg.Log,
		Now:    a.cfg.Now,
		Jobs: []retention.Job{{
			Name: "uploads", Data: "uploaded files", Expirer: a.svc,
			Interval: a.cfg.ExpireEvery, MaxAge: a.svc.RetentionMaxAge(a.cfg.ExpireEvery),
		}},
	})
	if err != nil {
		return err
	}
	pubSrv := &http.Server{Handler: a.public, TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)} // net/http's log lines carry client IPs
	admSrv := &http.Server{Handler: a.adminHTTP, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 4)
	go func() { errc <- pubSrv.ServeTLS(pub, "", "") }()
	go func() { errc <- admSrv.Serve(adm) }()
	go func() { errc <- sched.Run(ctx) }()
	if a.cfg.Component.Addr != "" {
		go func() { errc <- a.runComponent(ctx) }()
	}
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = pubSrv.Shutdown(sctx)
	_ = admSrv.Shutdown(sctx)
	return err
}

// run is main without the flags: it listens where cfg says and serves.
func run(ctx context.Context, cfg config) error {
	a, err := newApp(cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("uploadd: TLS: %w", err)
	}
	pub, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	adm, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		pub.Close()
		return err
	}
	return a.serve(ctx, pub, adm, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}
