package pubsub

import (
	"go/parser"
	gotoken "go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the adapter rule (STYLE.md): package pubsub imports no
// patina package but the root; the agent feeds it through OnApplied and
// cmd/patina wires it.
func TestImports(t *testing.T) {
	const module = "github.com/patinadb/patina"
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(gotoken.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, module+"/") {
				t.Errorf("%s imports %q; package pubsub may import only %q among patina packages", name, path, module)
			}
		}
	}
}
