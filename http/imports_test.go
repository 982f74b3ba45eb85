package http

import (
	"testing"

	"github.com/patinadb/patina/internal/purity"
)

// TestImports keeps the adapter rule (STYLE.md): package http imports no
// patina package but the root (and internal helpers); cmd/patina wires it.
func TestImports(t *testing.T) { purity.CheckAdapterImports(t, ".") }
