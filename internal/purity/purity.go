// Package purity checks that a package is pure in the sense of STYLE.md's
// import rules: no I/O, logging, network, global randomness, goroutines or
// wall clock. The pure packages' tests call CheckDir.
package purity

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports are the packages a pure package must not import: no I/O,
// no logging, no global randomness, no network (STYLE.md, import rules).
var forbiddenImports = map[string]bool{
	"database/sql":                    true,
	"net":                             true,
	"os":                              true,
	"log":                             true,
	"log/slog":                        true,
	"math/rand":                       true,
	"math/rand/v2":                    true,
	"github.com/hashicorp/memberlist": true,
}

// Impurities returns what makes one Go source file impure: forbidden
// imports, uses of time.Now and go statements.
func Impurities(name string, src []byte) ([]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var found []string
	timeName := "" // the local name of package time in this file
	for _, imp := range f.Imports {
		path, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, err
		}
		if forbiddenImports[path] {
			found = append(found, fmt.Sprintf("%s: imports %q; a pure package does no I/O, logging or global randomness", fset.Position(imp.Pos()), path))
		}
		if path == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			found = append(found, fmt.Sprintf("%s: go statement; a pure package starts no goroutines", fset.Position(n.Pos())))
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && n.Sel.Name == "Now" {
				found = append(found, fmt.Sprintf("%s: uses time.Now; take the time as input (an injected Now func)", fset.Position(n.Pos())))
			}
		}
		return true
	})
	return found, nil
}

// CheckDir fails tb for every impurity in the non-test .go files of dir.
func CheckDir(tb testing.TB, dir string) {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		tb.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		found, err := Impurities(name, src)
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range found {
			tb.Error(f)
		}
		checked++
	}
	if checked == 0 {
		tb.Fatal("no non-test .go files found in " + dir)
	}
}

// Module is patina's module path.
const Module = "github.com/patinadb/patina"

// CheckAdapterImports fails tb when a non-test file of dir imports a patina
// package other than the root and internal helpers: adapters never import
// each other (STYLE.md import rules); the agent and cmd/patina wire them.
func CheckAdapterImports(tb testing.TB, dir string) {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			tb.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, Module+"/") && !strings.HasPrefix(path, Module+"/internal/") {
				tb.Errorf("%s imports %q; an adapter may import only %q and internal helpers among patina packages", name, path, Module)
			}
		}
	}
}
