package pubsub

import (
	"context"
	"sync"

	"github.com/patinadb/patina"
)

// replayPage is how many logged changes a resuming client reads at a time.
const replayPage = 512

var _ patina.Subscription = (*listener)(nil)

// listener is one client's stream of a subscription: first a preamble
// (columns, the snapshot's rows, end of query) or a replay of logged
// changes, then live changes from a bounded buffer. The evaluation loop
// only ever appends to the buffer (never blocks); a client that lets it
// fill up is cut off with an error telling it where to resume (STYLE.md
// habit 18).
type listener struct {
	sb   *sub
	wake chan struct{} // capacity 1: "something changed"

	mu sync.Mutex
	// preamble
	preamble  bool
	sentCols  bool
	snap      []snapRow
	snapNext  int
	eoqChange uint64
	eoqSecs   float64
	// replay of logged changes replayNext..=replayEnd
	replayNext, replayEnd uint64
	replayBuf             []patina.Event
	// live
	live    []patina.Event
	max     int
	err     error // ends the stream once the buffers before it are drained
	cut     bool  // err applies at once: the buffers were dropped
	closed  bool
	lastOut uint64 // last change id handed to the client
}

type snapRow struct {
	id    int64
	cells string
}

func (l *listener) ID() string   { return l.sb.id }
func (l *listener) Hash() string { return l.sb.hash }

func (l *listener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// push appends a live event; it never blocks. Called with l.sb.mu held.
func (l *listener) push(ev patina.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.err != nil {
		return
	}
	if len(l.live) >= l.max {
		l.sb.svc.cutoffs.Add(1)
		l.cutOff(patina.Errorf(patina.EUNAVAILABLE,
			"subscription %s: this client fell more than %d events behind and was disconnected (the agent never buffers without bound); resume with GET /v1/subscriptions/%s?from=%d to get every change after the last one it received",
			l.sb.id, l.max, l.sb.id, l.lastOut))
		return
	}
	l.live = append(l.live, ev)
	l.signal()
}

// cutOff ends the stream at once with err. Called with l.mu held.
func (l *listener) cutOff(err error) {
	l.err, l.cut = err, true
	l.live, l.replayBuf, l.snap = nil, nil, nil
	l.preamble = false
	l.replayNext, l.replayEnd = 1, 0
	l.signal()
}

// end ends the stream after what is buffered (used when the subscription
// or the service goes away).
func (l *listener) end(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
	l.signal()
}

func (l *listener) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.live) + len(l.replayBuf)
	if l.preamble {
		n += len(l.snap) - l.snapNext + 1
	}
	if l.replayNext <= l.replayEnd {
		n++
	}
	return n
}

func (l *listener) Next(ctx context.Context) (patina.Event, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return patina.Event{}, patina.Errorf(patina.EUNAVAILABLE, "subscription stream closed")
		}
		if l.cut {
			err := l.err
			l.mu.Unlock()
			return patina.Event{}, err
		}
		if l.preamble {
			ev := l.nextPreamble()
			l.mu.Unlock()
			return ev, nil
		}
		if len(l.replayBuf) > 0 {
			ev := l.replayBuf[0]
			l.replayBuf = l.replayBuf[1:]
			l.lastOut = ev.ChangeID
			l.mu.Unlock()
			return ev, nil
		}
		if l.replayNext <= l.replayEnd {
			from, end := l.replayNext, l.replayEnd
			l.mu.Unlock()
			evs, err := l.sb.svc.replay(l.sb, from, end)
			l.mu.Lock()
			if err != nil {
				l.cutOff(err)
			} else if !l.cut {
				l.replayBuf = evs
				l.replayNext = from + uint64(len(evs))
			}
			l.mu.Unlock()
			continue
		}
		if len(l.live) > 0 {
			ev := l.live[0]
			l.live[0] = patina.Event{}
			l.live = l.live[1:]
			l.lastOut = ev.ChangeID
			l.mu.Unlock()
			return ev, nil
		}
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return patina.Event{}, err
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-ctx.Done():
			return patina.Event{}, ctx.Err()
		}
	}
}

// nextPreamble returns the next of columns, rows, end of query. Called
// with l.mu held.
func (l *listener) nextPreamble() patina.Event {
	if !l.sentCols {
		l.sentCols = true
		return patina.Event{Kind: patina.EventColumns, Columns: l.sb.plan.columns}
	}
	if l.snapNext < len(l.snap) {
		r := l.snap[l.snapNext]
		l.snap[l.snapNext] = snapRow{}
		l.snapNext++
		return patina.Event{Kind: patina.EventRow, RowID: r.id, Cells: mustDecode(r.cells)}
	}
	l.preamble, l.snap = false, nil
	l.lastOut = l.eoqChange
	return patina.Event{Kind: patina.EventEndOfQuery, ChangeID: l.eoqChange, Seconds: l.eoqSecs}
}

func (l *listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.live, l.replayBuf, l.snap = nil, nil, nil
	l.mu.Unlock()
	l.sb.svc.detach(l)
	return nil
}
