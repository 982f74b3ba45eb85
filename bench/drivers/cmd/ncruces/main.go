// Command ncruces runs the harness on github.com/ncruces/go-sqlite3 (pure
// Go): -api=direct uses the driver's own API (what patina's store uses),
// -api=sql its database/sql driver.
package main

import (
	"flag"

	_ "github.com/ncruces/go-sqlite3/driver"

	"github.com/patinadb/patina/bench/drivers/harness"
)

func main() {
	api := flag.String("api", "direct", "direct | sql")
	o := harness.Flags("")
	switch *api {
	case "direct":
		o.Driver = "ncruces (direct)"
		harness.Main(o, openDirect)
	case "sql":
		o.Driver = "ncruces (database/sql)"
		harness.Main(o, harness.SQLOpener("sqlite3", func(p string) string { return "file:" + p }))
	default:
		flag.Usage()
	}
}
