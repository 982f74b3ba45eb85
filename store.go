package patina

import "context"

// Statement is one SQL statement with positional or named parameters, the
// shapes Corrosion's API accepts.
type Statement struct {
	SQL    string
	Params []Value
	Named  map[string]Value // keys keep their SQLite prefix (":name", "$x", "@y")
}

// StatementResult is the outcome of one statement of a transaction.
type StatementResult struct {
	RowsAffected int64
	Seconds      float64
}

// TxResult is the outcome of a local transaction. Changeset is nil when the
// transaction changed nothing (it then has no version).
type TxResult struct {
	Results   []StatementResult
	Changeset *Changeset
}

// Rows is a query result being read.
type Rows interface {
	Columns() []string
	// Next advances to the next row, returning false at the end or on error.
	Next() bool
	// Values returns the current row; valid until the next call to Next.
	Values() []Value
	Err() error
	Close() error
}

// ApplyResult tells what a call to Store.Apply did with each changeset, in
// input order.
type ApplyResult struct {
	Outcomes []ApplyOutcome
	// Errors holds, for each rejected changeset, why (naming origin,
	// version, table and reason); nil entries for the others.
	Errors []error
}

// ApplyOutcome is what happened to one incoming changeset.
type ApplyOutcome uint8

// Apply outcomes.
const (
	ApplyNew       ApplyOutcome = iota // applied; the version (or chunk) was new here
	ApplyDuplicate                     // already known; nothing done
	ApplyBuffered                      // a chunk of a partial version, kept until complete
	ApplyDeferred                      // references schema this node lacks; kept until it arrives
	ApplyRejected                      // poison: failed to decode or apply; quarantined
)

func (o ApplyOutcome) String() string {
	return [...]string{"new", "duplicate", "buffered", "deferred", "rejected"}[o]
}

// Store is a node's replicated SQLite database.
type Store interface {
	// Actor returns the store's own actor id.
	Actor() ActorID
	// Transact runs stmts atomically as one local transaction.
	Transact(ctx context.Context, stmts []Statement) (*TxResult, error)
	// Query runs one read-only statement.
	Query(ctx context.Context, stmt Statement) (Rows, error)
	// Apply merges changesets from other nodes.
	Apply(ctx context.Context, css []Changeset) (ApplyResult, error)
	// ChangesFor calls fn with the changesets of actor's versions in r, newest
	// first, each cut into chunks of at most maxBytes (estimated), and with
	// Cleared changesets for versions that no longer carry cells.
	ChangesFor(ctx context.Context, actor ActorID, r Range, maxBytes int, fn func(Changeset) error) error
	// PartialChangesFor is ChangesFor for given seq ranges of one version.
	PartialChangesFor(ctx context.Context, actor ActorID, v Version, seqs []Range, maxBytes int, fn func(Changeset) error) error
	// SyncState returns a copy of the bookkeeping (cheap: held in memory).
	SyncState() SyncState
	Close() error
}
