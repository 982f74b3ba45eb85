// Package http is the agent's client API: an HTTP server speaking
// Corrosion's routes and JSON shapes, so Corrosion clients work unchanged,
// and a small client of it for the CLI.
//
// Routes (see research/corrosion-internals.md §8):
//
//	POST /v1/transactions[?timeout=secs][&wait=all|region|N]  JSON array of statements, one transaction
//	POST /v1/queries[?timeout=secs]       one read-only statement, NDJSON stream
//	GET  /v1/health?gaps=&p99_lag=&max_queue=&queue_size=&failure_status=
//	GET  /v1/members                      the cluster's members
//	GET  /v1/status                       the node's status
//
// With Server.Subscriptions set (subscriptions.go):
//
//	POST /v1/subscriptions[?from=&skip_rows=]       subscribe: NDJSON columns, row, eoq, change, error
//	GET  /v1/subscriptions/{id}[?from=&skip_rows=]  attach or resume
//	GET  /v1/subscriptions[/{id}/info]              list or describe (JSON)
//	POST /v1/updates/{table}                        NDJSON notify lines per changed key
//
// With Server.Waiter set, ?wait= on transactions and, for peers,
// GET /v1/applied/{actor}/{version} (applied.go).
//
// Statements take Corrosion's four forms and parameters decode by its rules
// (DecodeStatement); result cells encode as its SqliteValue (AppendValue).
// Every error body is {"error": "..."}; patina error codes map to HTTP
// statuses in one table (ErrorStatus). Each route sheds load beyond
// MaxConcurrent requests in flight with 503 and Retry-After instead of
// queueing, as Corrosion's ConcurrencyLimit + load shedding does.
//
// The package imports no other patina package but the root: the agent
// implements Service and is wired in by cmd/patina.
package http
