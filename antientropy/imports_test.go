package antientropy

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

// impurities returns what makes one Go source file impure: forbidden
// imports, uses of time.Now and go statements.
func impurities(name string, src []byte) ([]string, error) {
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

// TestImports keeps the package pure: every non-test .go file passes
// impurities.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		found, err := impurities(name, src)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range found {
			t.Error(f)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no non-test .go files found")
	}
}

// TestImpurities checks that the checker itself catches what it must.
func TestImpurities(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want int
	}{
		{"clean", "package p\nimport \"time\"\nfunc f(now func() time.Time) time.Time { return now() }\n", 0},
		{"os", "package p\nimport \"os\"\nvar _ = os.Args\n", 1},
		{"slog", "package p\nimport \"log/slog\"\nvar _ = slog.Info\n", 1},
		{"rand", "package p\nimport \"math/rand\"\nvar _ = rand.Int\n", 1},
		{"memberlist", "package p\nimport \"github.com/hashicorp/memberlist\"\nvar _ memberlist.Config\n", 1},
		{"time.Now", "package p\nimport \"time\"\nvar _ = time.Now()\n", 1},
		{"renamed time.Now", "package p\nimport t \"time\"\nvar _ = t.Now\n", 1},
		{"go statement", "package p\nfunc f() { go f() }\n", 1},
		{"Now of another package", "package p\nimport \"time\"\ntype c struct{ Now func() time.Time }\nvar x c\nvar _ = x.Now\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, err := impurities("x.go", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != tt.want {
				t.Fatalf("found %d impurities %q, want %d", len(found), found, tt.want)
			}
		})
	}
}
