// Package apitest holds the check that keeps a library package's API from
// growing unnoticed: each package's api_test.go calls ExportCount with the
// bound it was shrunk to, so a new export must replace an old one or raise
// the bound in a reviewed change.
package apitest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Names returns the sorted top-level exported names declared in the non-test
// Go files of dir: constants, variables, functions without a receiver and
// types; methods and struct fields are not counted. A name in a grouped
// declaration counts once. This is the measure of internal/tools/exports.
func Names(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var names []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		names = append(names, topLevel(f)...)
	}
	sort.Strings(names)
	return names, nil
}

func topLevel(f *ast.File) []string {
	var names []string
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
	return names
}

// Check returns an error listing the names when the package in dir
// declares more than max top-level exported names.
func Check(dir string, max int) error {
	names, err := Names(dir)
	if err != nil {
		return err
	}
	if len(names) > max {
		return fmt.Errorf("%d exported names, want at most %d: %s", len(names), max, strings.Join(names, " "))
	}
	return nil
}

// ExportCount fails t when the package in dir declares more than max
// top-level exported names (see Check).
func ExportCount(t testing.TB, dir string, max int) {
	t.Helper()
	if err := Check(dir, max); err != nil {
		t.Error(err)
	}
}
