package mam_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxExports bounds the package's top-level exported names (constants,
// variables, functions and types; methods and fields aside). Each one is
// needed by a server, a Store implementation or mamtest; a new one replaces
// an old one or raises this bound with a reason. 43 = 40 + the Archiver's
// arguments Chat, RoomMessage and Stanza (the struct-taking calls replaced
// four methods, which this count does not include).
const maxExports = 43

func TestExportCount(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var names []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					names = append(names, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	sort.Strings(names)
	if len(names) > maxExports {
		t.Errorf("%d exported names, want at most %d: %s", len(names), maxExports, strings.Join(names, " "))
	}
}
