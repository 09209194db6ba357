package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The third-party client test: Debian's go-sendxmpp (built on go-xmpp, not
// on mellium) sends a message over STARTTLS and over direct TLS, an HTTP
// upload, and a message into a room, each received by a mellium client.
// It trusts the server's self-signed certificate through SSL_CERT_FILE
// (Go's crypto/x509 reads it on Linux), so TLS verification stays on. It
// runs with a temporary HOME and an empty configuration file, never the
// user's. Without the binary the test skips, unless CI is set: then it
// fails (.ci/run installs it).

// sendxmpp is a go-sendxmpp run against a test server.
type sendxmpp struct {
	bin, home, certFile string
}

func newSendxmpp(t *testing.T, ts *testServer) *sendxmpp {
	t.Helper()
	bin, err := exec.LookPath("go-sendxmpp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("go-sendxmpp not found; CI must install it: apt-get install -y go-sendxmpp")
		}
		t.Skip("go-sendxmpp not found; install it with: apt-get install -y go-sendxmpp")
	}
	home := t.TempDir()
	certFile := filepath.Join(home, "server.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(certFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return &sendxmpp{bin: bin, home: home, certFile: certFile}
}

// run runs go-sendxmpp as user against addr (the STARTTLS or the direct TLS
// port; direct adds -t) with args and message on stdin.
func (x *sendxmpp) run(t *testing.T, addr string, direct bool, user, password, message string, args ...string) {
	t.Helper()
	if out, err := x.runErr(t, x.certFile, addr, direct, user, password, message, args...); err != nil {
		t.Fatalf("go-sendxmpp %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// runErr is run with the trusted certificates in certFile, returning the
// error and the output.
func (x *sendxmpp) runErr(t *testing.T, certFile, addr string, direct bool, user, password, message string, args ...string) (string, error) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(x.home, "sendxmpprc")
	if err := os.WriteFile(conf, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	all := []string{"-f", conf, "-u", user + "@localhost", "-p", password,
		"-j", "localhost:" + port, "--timeout", "10"}
	if direct {
		all = append(all, "-t")
	}
	all = append(all, args...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.bin, all...)
	cmd.Dir = x.home
	cmd.Env = []string{"HOME=" + x.home, "XDG_CONFIG_HOME=" + filepath.Join(x.home, ".config"),
		"SSL_CERT_FILE=" + certFile, "SSL_CERT_DIR=" + t.TempDir(), // empty: only certFile is trusted
		"PATH=" + os.Getenv("PATH")}
	cmd.Stdin = strings.NewReader(message)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// TestGoSendxmpp: a client not built on mellium talks to the server.
func TestGoSendxmpp(t *testing.T) {
	ts := startTestServer(t)
	x := newSendxmpp(t, ts)
	ts.Register(t, "alice", "alice pass")
	ts.Register(t, "bob", "bob pass")
	a := ts.Login(t, "alice", "alice pass")

	t.Run("verifies-the-certificate", func(t *testing.T) {
		none := filepath.Join(x.home, "none.pem")
		if err := os.WriteFile(none, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := x.runErr(t, none, ts.C2STLS, true, "bob", "bob pass", "untrusted\n", "alice@localhost"); err == nil {
			t.Errorf("go-sendxmpp accepted an untrusted certificate:\n%s", out)
		}
	})
	t.Run("starttls", func(t *testing.T) {
		x.run(t, ts.C2S, false, "bob", "bob pass", "over starttls\n", "alice@localhost")
		if m := a.Next(t, isMessage); body(m) != "over starttls" || !strings.HasPrefix(m.attr("from"), "bob@localhost/") {
			t.Errorf("message: %q from %q", body(m), m.attr("from"))
		}
	})
	t.Run("direct-tls", func(t *testing.T) {
		x.run(t, ts.C2STLS, true, "bob", "bob pass", "over direct tls\n", "alice@localhost")
		if m := a.Next(t, isMessage); body(m) != "over direct tls" {
			t.Errorf("message: %q", body(m))
		}
	})
	t.Run("upload", func(t *testing.T) {
		content := []byte("a file from go-sendxmpp\n")
		file := filepath.Join(x.home, "note.txt")
		if err := os.WriteFile(file, content, 0o600); err != nil {
			t.Fatal(err)
		}
		x.run(t, ts.C2STLS, true, "bob", "bob pass", "", "-h", file, "alice@localhost")
		m := a.Next(t, isMessage)
		url := strings.TrimSpace(body(m))
		if !strings.HasPrefix(url, ts.HTTPSURL+"/upload/") {
			t.Fatalf("upload message: %q", url)
		}
		resp, err := ts.HTTPClient.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, content) {
			t.Errorf("GET %s: %d %q %v", url, resp.StatusCode, got, err)
		}
	})
	t.Run("groupchat", func(t *testing.T) {
		const room = "sendx@conference.localhost"
		joinRoom(t, a, room+"/Al")
		// The instant room (XEP-0045 § 10.1.2), in case new rooms are locked.
		a.IQ(t, `<iq type="set" id="inst" to="`+room+`"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit"/></query></iq>`)
		x.run(t, ts.C2STLS, true, "bob", "bob pass", "into the room\n", "-c", "-a", "bobby", room)
		m := a.Next(t, isGroupchat("into the room"))
		if m.attr("from") != room+"/bobby" {
			t.Errorf("groupchat from %q", m.attr("from"))
		}
	})
}
