// Command modernc runs the harness on modernc.org/sqlite (pure Go,
// database/sql).
package main

import (
	_ "modernc.org/sqlite"

	"github.com/patinadb/patina/bench/drivers/harness"
)

func main() {
	o := harness.Flags("modernc (database/sql)")
	harness.Main(o, harness.SQLOpener("sqlite", func(p string) string { return p }))
}
