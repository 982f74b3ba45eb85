// Package defaultschema holds patina's built-in service discovery schema
// (machines, services, health checks), used when no schema files are
// configured and by devcluster and the test harnesses.
package defaultschema

import _ "embed"

// SQL is the schema file's text.
//
//go:embed default.sql
var SQL string

// Name is the name used for it in error messages and __patina_schema.
const Name = "builtin:default.sql"
