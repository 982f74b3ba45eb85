// Command mattn runs the harness on github.com/mattn/go-sqlite3 (cgo,
// database/sql).
package main

import (
	_ "github.com/mattn/go-sqlite3"

	"github.com/patinadb/patina/bench/drivers/harness"
)

func main() {
	o := harness.Flags("mattn (database/sql)")
	harness.Main(o, harness.SQLOpener("sqlite3", func(p string) string { return p }))
}
