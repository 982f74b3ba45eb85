package wire

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPackage_IsPure holds the package to its contract (STYLE.md): no network, files,
// logging, global randomness, wall clock or goroutines in the codec, and
// exactly one package doc comment.
func TestPackage_IsPure(t *testing.T) {
	forbidden := map[string]string{
		"database/sql": "storage belongs to package sqlite",
		"net":          "the network belongs to the adapters",
		"os":           "files belong to the adapters",
		"log":          "pure packages do not log",
		"log/slog":     "pure packages do not log",
		"math/rand":    "randomness is injected, never global",
		"math/rand/v2": "randomness is injected, never global",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var docs []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil {
			docs = append(docs, name)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if why, ok := forbidden[path]; ok {
				t.Errorf("%s imports %q: %s", fset.Position(imp.Pos()), path, why)
			}
			if strings.Contains(path, "memberlist") {
				t.Errorf("%s imports %q: membership belongs to package gossip", fset.Position(imp.Pos()), path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: go statement: pure packages start no goroutines", fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" && n.Sel.Name == "Now" {
					t.Errorf("%s: time.Now: the clock is injected", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	if len(docs) != 1 || docs[0] != "doc.go" {
		t.Errorf("package doc comments in %v, want exactly one, in doc.go", docs)
	}
}
