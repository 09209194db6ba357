package prosodytest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPortOptions(t *testing.T) {
	got, err := portOptions([]Service{{"c2s", 5000}, {"s2s", 5001}, {"c2s", 5002}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"c2s_ports = { 5000, 5002 }\n", "s2s_ports = { 5001 }\n", "http_ports = {  }\n", "component_ports = {  }\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("port options lack %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "_ports = ") != len(serviceNames) {
		t.Errorf("not every port list is set once:\n%s", got)
	}
	if _, err := portOptions([]Service{{"xmpp", 1}}); err == nil {
		t.Error("unknown service accepted")
	}
}

func TestResolver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		peers map[string]string
		want  []string // in the option and hosts file; nil: an error
	}{
		{"none", nil, []string{`["local-zone:"] = ". static"`, "resolvconf = false"}},
		{"one", map[string]string{"a.example": "127.0.0.1:5269"},
			[]string{`"_xmpp-server._tcp.a.example. 60 IN SRV 0 0 5269 a.example."`, "127.0.0.1 a.example\n"}},
		{"two", map[string]string{"a.example": "127.0.0.1:1", "b.example": "127.0.0.2:2"},
			[]string{`["local-data:"]`, `["local-data"]`, "127.0.0.2 b.example\n", "SRV 0 0 2 b.example."}},
		{"three", map[string]string{"a.example": "127.0.0.1:1", "b.example": "127.0.0.1:2", "c.example": "127.0.0.1:3"}, nil},
		{"not loopback", map[string]string{"a.example": "192.0.2.1:5269"}, nil},
		{"a name", map[string]string{"a.example": "localhost:5269"}, nil},
		{"no port", map[string]string{"a.example": "127.0.0.1"}, nil},
		{"bad port", map[string]string{"a.example": "127.0.0.1:70000"}, nil},
		{"quote", map[string]string{`a".example`: "127.0.0.1:1"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Prosody{Dir: t.TempDir()}
			opt, err := p.resolver(tc.peers)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("accepted: %s", opt)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			hosts, err := os.ReadFile(filepath.Join(p.Dir, "hosts"))
			if err != nil {
				t.Fatal(err)
			}
			all := opt + "\n" + string(hosts)
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("%q missing from:\n%s", w, all)
				}
			}
		})
	}
}
