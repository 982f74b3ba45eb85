package patina

import (
	"context"
	"time"
)

// ChangeKind is what happened to a row of a subscription's result, or to a
// primary key of an update stream.
type ChangeKind uint8

// Change kinds, named on the wire as Corrosion names them.
const (
	ChangeInsert ChangeKind = iota + 1
	ChangeUpdate
	ChangeDelete
)

func (k ChangeKind) String() string {
	switch k {
	case ChangeInsert:
		return "insert"
	case ChangeUpdate:
		return "update"
	case ChangeDelete:
		return "delete"
	}
	return "unknown"
}

// ParseChangeKind parses "insert", "update" or "delete".
func ParseChangeKind(s string) (ChangeKind, error) {
	for k := ChangeInsert; k <= ChangeDelete; k++ {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, Errorf(EINVALID, "unknown change type %q; want insert, update or delete", s)
}

// EventKind says which line of a subscription stream an Event is.
type EventKind uint8

// Event kinds, in the order a fresh subscription sends them: the columns,
// one Row per row of the current result, EndOfQuery, then a Change for every
// later change to the result.
const (
	EventColumns EventKind = iota + 1
	EventRow
	EventEndOfQuery
	EventChange
)

func (k EventKind) String() string {
	switch k {
	case EventColumns:
		return "columns"
	case EventRow:
		return "row"
	case EventEndOfQuery:
		return "eoq"
	case EventChange:
		return "change"
	}
	return "unknown"
}

// Event is one line of a subscription stream (Corrosion's QueryEvent).
type Event struct {
	Kind EventKind
	// Columns names the result columns (EventColumns).
	Columns []string
	// RowID is the row's identity within the subscription, stable across
	// updates and never reused (EventRow, EventChange).
	RowID int64
	// Cells are the row's values; for a delete, its last values (EventRow,
	// EventChange).
	Cells []Value
	// Change is what happened to the row (EventChange).
	Change ChangeKind
	// ChangeID numbers changes per subscription, contiguously from 1
	// (EventChange). For EventEndOfQuery it is the change the snapshot
	// reflects: resume with From set to it to get every later change.
	ChangeID uint64
	// Seconds is the time spent producing the snapshot (EventEndOfQuery).
	Seconds float64
}

// SubscribeOptions tune where a subscription stream starts.
type SubscribeOptions struct {
	// HasFrom asks for the changes after From only (no columns, rows or
	// end of query): the resume of a client that saw changes up to From.
	// A From older than the kept change log is refused with code EGONE.
	HasFrom bool
	From    uint64
	// SkipRows asks for the changes only, from now on.
	SkipRows bool
}

// Subscription is one client's stream of a subscription's events.
type Subscription interface {
	// ID is the subscription's id (a UUID), shared by every client of the
	// same query.
	ID() string
	// Hash identifies the query text and parameters.
	Hash() string
	// Next returns the next event, waiting for one. An error ends the
	// stream: ctx's error, or a *Error saying why (the client fell too far
	// behind, the subscription failed, the service is closing), with the
	// change id to resume from when resuming makes sense.
	Next(ctx context.Context) (Event, error)
	// Pending is how many events Next can return without waiting (at
	// least), so a writer knows when to flush.
	Pending() int
	// Close ends the stream; the subscription lives on for other clients
	// and for resumes until it has been idle for a while.
	Close() error
}

// Notification is one line of an update stream: a primary key of a table
// changed (ChangeUpdate: inserted or updated) or was deleted.
type Notification struct {
	Kind ChangeKind
	PK   []Value
}

// UpdateStream is one client's stream of a table's changed primary keys.
type UpdateStream interface {
	// ID is the stream's id (a UUID, the same for every stream of a table).
	ID() string
	// Next returns the next notification, waiting for one; an error ends
	// the stream as for Subscription.Next.
	Next(ctx context.Context) (Notification, error)
	// Pending is how many notifications Next can return without waiting.
	Pending() int
	Close() error
}

// SubscriptionInfo describes a subscription for listings and `patina subs`.
type SubscriptionInfo struct {
	ID      string
	Hash    string
	SQL     string
	Columns []string
	// Tables are the tables the query reads.
	Tables []string
	// Strategy is how changes are computed: "primary-key" (re-run for the
	// changed keys only), "full" (re-run and diff by the tables' keys) or
	// "full-content" (re-run and diff by row content).
	Strategy     string
	Subscribers  int
	Rows         int
	LastChangeID uint64
	// OldestChangeID is the oldest change still kept for resumes
	// (LastChangeID+1 when none is kept).
	OldestChangeID uint64
	CreatedAt      time.Time
	// Evaluations counts re-evaluations; EvalSeconds is the time they took.
	Evaluations uint64
	EvalSeconds float64
}

// SubscriptionService maintains subscriptions: queries whose result changes
// are pushed to clients as they happen, with a durable, resumable change
// log. package pubsub implements it.
type SubscriptionService interface {
	// Subscribe starts (or joins: identical statements share one
	// subscription) a subscription to a read-only query.
	Subscribe(ctx context.Context, stmt Statement, opts SubscribeOptions) (Subscription, error)
	// Resume attaches to an existing subscription by id.
	Resume(ctx context.Context, id string, opts SubscribeOptions) (Subscription, error)
	// Updates streams the changed primary keys of a table.
	Updates(ctx context.Context, table string) (UpdateStream, error)
	// Subscriptions lists the live subscriptions.
	Subscriptions(ctx context.Context) []SubscriptionInfo
	// SubscriptionInfo describes one subscription.
	SubscriptionInfo(ctx context.Context, id string) (SubscriptionInfo, error)
}
