// Command uploadd is an external HTTP upload service (XEP-0363) for XMPP
// servers that are not built on this library: Prosody ≥ 0.12
// (mod_http_file_share in external mode), ejabberd (mod_http_upload with
// external_secret) and prosody-modules' mod_http_upload_external. It
// stores files with package upload (bbolt metadata, files on disk), so
// each file is deleted at the end of its lifetime, counts against its
// owner's quotas and is erased with its owner's account through the admin
// endpoint DELETE /users/<jid>. It can also serve slots itself as an
// XEP-0114 component. See README.md for the configuration of each server.
//
// Usage:
//
//	uploadd -base-url https://upload.example.org/files -data /var/lib/uploadd \
//		-cert cert.pem -key key.pem -prosody-secret-file /etc/uploadd/prosody.secret \
//		-admin-secret-file /etc/uploadd/admin.secret
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "uploadd:", err)
		os.Exit(2)
	}
	cfg.Log = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("uploadd stopped", "err", err)
		os.Exit(1)
	}
}

// parseFlags reads the command line. Secrets are read from files, never
// from flags (which other users can read in the process list).
func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("uploadd", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", ":5443", "public HTTPS `address`")
	fs.StringVar(&c.AdminListen, "admin-listen", "127.0.0.1:5444", "admin HTTP `address` (keep it on loopback)")
	fs.StringVar(&c.BaseURL, "base-url", "", "public HTTPS base `URL` the XMPP server puts in slots (required)")
	fs.StringVar(&c.DataDir, "data", "", "data `directory` (required; created 0700)")
	fs.StringVar(&c.CertFile, "cert", "", "TLS certificate `file` (PEM)")
	fs.StringVar(&c.KeyFile, "key", "", "TLS private key `file` (PEM)")
	fs.DurationVar(&c.TTL, "ttl", 0, "file lifetime (0: 30 days)")
	fs.Int64Var(&c.MaxFileSize, "max-size", 0, "largest file in bytes (0: 100 MiB)")
	fs.DurationVar(&c.ExpireEvery, "expire-every", 10*time.Minute, "interval between two expiry runs")
	secretFlag := func(name, usage string, dst *[]byte) {
		fs.Func(name, usage+" (`file`)", func(p string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			*dst = []byte(strings.TrimSpace(string(b)))
			if len(*dst) == 0 {
				return fmt.Errorf("%s: empty secret", name)
			}
			return nil
		})
	}
	secretFlag("prosody-secret-file", "Prosody's http_file_share_secret", &c.Secrets.Prosody)
	secretFlag("ejabberd-secret-file", "ejabberd's mod_http_upload external_secret", &c.Secrets.Ejabberd)
	secretFlag("external-secret-file", "mod_http_upload_external's http_upload_external_secret", &c.Secrets.External)
	secretFlag("admin-secret-file", "secret of the admin endpoint (required)", &c.AdminSecret)
	fs.StringVar(&c.Component.Addr, "component-addr", "", "XMPP server's XEP-0114 component `address` (host:port); empty: no component")
	fs.StringVar(&c.Component.JID, "component-jid", "", "the component's `domain`, e.g. upload.example.org")
	secretFlag("component-secret-file", "the component's shared secret", &c.Component.Secret)
	domains := fs.String("component-domains", "", "comma-separated `domains` whose users may request slots from the component")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, d := range strings.Split(*domains, ",") {
		if d = strings.TrimSpace(d); d != "" {
			c.Component.Domains = append(c.Component.Domains, d)
		}
	}
	return c, c.check()
}
