package antientropy

import (
	"testing"

	"github.com/patinadb/patina/internal/purity"
)

// TestImports keeps the package pure (STYLE.md import rules).
func TestImports(t *testing.T) { purity.CheckDir(t, ".") }
