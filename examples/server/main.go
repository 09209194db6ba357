// Command server is a TLS-only XMPP provider that wires every package of
// chatbx.eu/privacy together. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(2)
	}
	cfg.Stderr = os.Stderr
	cfg.S3AccessKey, cfg.S3SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = run(ctx, cfg, func(srv *Server) {
		fmt.Fprintf(os.Stderr, "server: %s ready: c2s %s (STARTTLS), %s (direct TLS), %s\n",
			cfg.Domain, srv.C2SAddr(), srv.C2STLSAddr(), srv.BaseURL())
		if !cfg.OpenRegistration {
			fmt.Fprintln(os.Stderr, "server: in-band registration is closed; restart with -open-registration to create accounts from a client")
		}
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}
