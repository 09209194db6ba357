package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestCountDir(t *testing.T) {
	got, err := countDir("testdata/sample")
	if err != nil {
		t.Fatal(err)
	}
	want := counts{Consts: 2, Vars: 1, Funcs: 2, Types: 3, Methods: 2, Fields: 3}
	if got != want {
		t.Fatalf("countDir = %+v, want %+v", got, want)
	}
	if got.Total() != 8 {
		t.Fatalf("Total = %d, want 8", got.Total())
	}
}

func TestRunSums(t *testing.T) {
	var buf bytes.Buffer
	if err := run(&buf, []string{"testdata/sample", "testdata/sample"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("want header, two rows and a sum:\n%s", buf.String())
	}
	if f := strings.Fields(lines[3]); f[0] != "all" || f[5] != "16" {
		t.Fatalf("sum row = %q, want total 16", lines[3])
	}
}

func TestRunErrors(t *testing.T) {
	for _, dir := range []string{"testdata/missing", "testdata"} {
		if err := run(new(bytes.Buffer), []string{dir}); err == nil {
			t.Errorf("run(%q) succeeded", dir)
		}
	}
}
