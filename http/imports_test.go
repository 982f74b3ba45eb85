package http

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the adapter rule (STYLE.md): package http imports no
// patina package but the root; the agent is wired in by cmd/patina.
func TestImports(t *testing.T) {
	const module = "github.com/patinadb/patina"
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, module+"/") {
				t.Errorf("%s imports %q; package http may import only %q among patina packages", name, path, module)
			}
		}
	}
}
