// Command exports counts the top-level exported identifiers of Go packages:
// the measure of a package's API width used when shrinking it.
//
//	go run ./internal/tools/exports            # the five library packages
//	go run ./internal/tools/exports ./mam ./upload
//
// For each package directory it parses the non-test .go files and prints one
// line: the exported constants, variables, functions (without receiver) and
// types declared at top level, their total, and, apart from the total, the
// exported methods and struct fields of exported types. Each name in a
// grouped declaration counts once ("const ( A = 1; B = 2 )" counts two). The
// last line sums every column.
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// libraryPackages are counted when no directory is given.
var libraryPackages = []string{"./mam", "./upload", "./account", "./retention", "./logredact"}

// counts holds the exported names of one package, by kind.
type counts struct {
	Consts, Vars, Funcs, Types int // top level
	Methods, Fields            int // of exported types, not in Total
}

// Total is the number of top-level exported identifiers.
func (c counts) Total() int { return c.Consts + c.Vars + c.Funcs + c.Types }

func (c *counts) add(o counts) {
	c.Consts += o.Consts
	c.Vars += o.Vars
	c.Funcs += o.Funcs
	c.Types += o.Types
	c.Methods += o.Methods
	c.Fields += o.Fields
}

func main() {
	dirs := os.Args[1:]
	if len(dirs) == 0 {
		dirs = libraryPackages
	}
	if err := run(os.Stdout, dirs); err != nil {
		fmt.Fprintln(os.Stderr, "exports:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, dirs []string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "package\tconst\tvar\tfunc\ttype\ttotal\t\tmethods\tfields\t")
	var sum counts
	for _, dir := range dirs {
		c, err := countDir(dir)
		if err != nil {
			return err
		}
		sum.add(c)
		printRow(tw, dir, c)
	}
	if len(dirs) > 1 {
		printRow(tw, "all", sum)
	}
	return tw.Flush()
}

func printRow(w io.Writer, name string, c counts) {
	fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t\t%d\t%d\t\n", name, c.Consts, c.Vars, c.Funcs, c.Types, c.Total(), c.Methods, c.Fields)
}

// countDir counts the exported identifiers declared in the non-test Go
// files of dir (one package; sub-directories are not included).
func countDir(dir string) (counts, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return counts{}, err
	}
	var files []*ast.File
	for _, e := range entries {
		if !isSource(e) {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			return counts{}, err
		}
		if f.Name.Name == "main" || strings.HasSuffix(f.Name.Name, "_test") {
			continue
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return counts{}, fmt.Errorf("%s: no Go package", dir)
	}
	return countFiles(files), nil
}

func isSource(e fs.DirEntry) bool {
	n := e.Name()
	return e.Type().IsRegular() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go")
}

func countFiles(files []*ast.File) counts {
	var c counts
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					c.Funcs++
				} else if exportedRecv(d.Recv) {
					c.Methods++
				}
			case *ast.GenDecl:
				countGen(&c, d)
			}
		}
	}
	return c
}

func countGen(c *counts, d *ast.GenDecl) {
	for _, s := range d.Specs {
		switch s := s.(type) {
		case *ast.ValueSpec:
			for _, n := range s.Names {
				if !n.IsExported() {
					continue
				}
				if d.Tok == token.CONST {
					c.Consts++
				} else {
					c.Vars++
				}
			}
		case *ast.TypeSpec:
			if !s.Name.IsExported() {
				continue
			}
			c.Types++
			switch t := s.Type.(type) {
			case *ast.StructType:
				c.Fields += exportedFields(t.Fields)
			case *ast.InterfaceType:
				c.Methods += exportedFields(t.Methods)
			}
		}
	}
}

// exportedFields counts the exported names of a field list; an embedded
// exported type counts as one.
func exportedFields(fl *ast.FieldList) int {
	n := 0
	for _, f := range fl.List {
		if len(f.Names) == 0 {
			if id := baseIdent(f.Type); id != nil && id.IsExported() {
				n++
			}
			continue
		}
		for _, name := range f.Names {
			if name.IsExported() {
				n++
			}
		}
	}
	return n
}

// exportedRecv reports whether a method's receiver type is exported.
func exportedRecv(recv *ast.FieldList) bool {
	if len(recv.List) != 1 {
		return false
	}
	id := baseIdent(recv.List[0].Type)
	return id != nil && id.IsExported()
}

// baseIdent strips pointers, type parameters and package qualifiers.
func baseIdent(e ast.Expr) *ast.Ident {
	for {
		switch t := e.(type) {
		case *ast.Ident:
			return t
		case *ast.StarExpr:
			e = t.X
		case *ast.IndexExpr:
			e = t.X
		case *ast.IndexListExpr:
			e = t.X
		case *ast.SelectorExpr:
			return t.Sel
		default:
			return nil
		}
	}
}
