package http

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/patinadb/patina"
)

// Subscription stream headers: Corrosion's, and patina's name for the id.
const (
	HeaderQueryID       = "corro-query-id"
	HeaderQueryHash     = "corro-query-hash"
	HeaderPatinaQueryID = "patina-query-id"
)

// mountSubscriptions adds the subscription and update routes:
//
//	POST /v1/subscriptions[?from=&skip_rows=]  subscribe to a statement (NDJSON stream)
//	GET  /v1/subscriptions                     list subscriptions (JSON)
//	GET  /v1/subscriptions/{id}[?from=&skip_rows=]  attach to one (NDJSON stream)
//	GET  /v1/subscriptions/{id}/info           describe one (JSON)
//	POST /v1/updates/{table}                   changed primary keys (NDJSON stream)
//
// Streams are not counted against MaxConcurrent (they last as long as the
// client wants); the subscription service bounds them.
func (s *Server) mountSubscriptions(mux *http.ServeMux) []string {
	mux.HandleFunc("POST /v1/subscriptions", s.handleSubscribe)
	mux.HandleFunc("GET /v1/subscriptions", s.handleListSubscriptions)
	mux.HandleFunc("GET /v1/subscriptions/{id}", s.handleResume)
	mux.HandleFunc("GET /v1/subscriptions/{id}/info", s.handleSubscriptionInfo)
	mux.HandleFunc("POST /v1/updates/{table}", s.handleUpdates)
	return []string{"POST /v1/subscriptions", "GET /v1/subscriptions[/{id}[/info]]", "POST /v1/updates/{table}"}
}

// closingCh returns a channel closed when Close starts.
func (s *Server) closingCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing == nil {
		s.closing = make(chan struct{})
	}
	return s.closing
}

// streamContext is the request's context, also cancelled when the server
// starts closing; closed reports which happened.
func (s *Server) streamContext(r *http.Request) (ctx context.Context, closed func() bool, cancel func()) {
	ctx, cancelCtx := context.WithCancel(r.Context())
	closing := s.closingCh()
	var shut atomic.Bool
	stop := make(chan struct{})
	go func() {
		select {
		case <-closing:
			shut.Store(true)
			cancelCtx()
		case <-stop:
		case <-ctx.Done():
		}
	}()
	return ctx, shut.Load, func() { close(stop); cancelCtx() }
}

// subscribeOptions parses ?from=CHANGE_ID and ?skip_rows=BOOL.
func subscribeOptions(r *http.Request) (patina.SubscribeOptions, error) {
	var opts patina.SubscribeOptions
	q := r.URL.Query()
	if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return opts, patina.Errorf(patina.EINVALID, "?from=%s is not a change id (a non-negative integer from a change event)", v)
		}
		opts.HasFrom, opts.From = true, n
	}
	if v := q.Get("skip_rows"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return opts, patina.Errorf(patina.EINVALID, "?skip_rows=%s is not true or false", v)
		}
		opts.SkipRows = b
	}
	return opts, nil
}

// handleSubscribe serves POST /v1/subscriptions: one statement, as for
// queries; the response streams the subscription.
func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	opts, err := subscribeOptions(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	stmt, err := DecodeStatement(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sub, err := s.Subscriptions.Subscribe(r.Context(), stmt, opts)
	if err != nil {
		s.writeError(w, r, contextError(r.Context(), err, "subscribe"))
		return
	}
	s.streamSubscription(w, r, sub)
}

// handleResume serves GET /v1/subscriptions/{id}.
func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	opts, err := subscribeOptions(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sub, err := s.Subscriptions.Resume(r.Context(), r.PathValue("id"), opts)
	if err != nil {
		s.writeError(w, r, contextError(r.Context(), err, "resume subscription"))
		return
	}
	s.streamSubscription(w, r, sub)
}

// streamSubscription writes a subscription's events as NDJSON until the
// client goes away or the stream ends with an {"error": ...} line.
func (s *Server) streamSubscription(w http.ResponseWriter, r *http.Request, sub patina.Subscription) {
	defer sub.Close()
	h := w.Header()
	h.Set(HeaderQueryID, sub.ID())
	h.Set(HeaderPatinaQueryID, sub.ID())
	h.Set(HeaderQueryHash, sub.Hash())
	h.Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	out := &lineWriter{w: w, rc: http.NewResponseController(w), now: s.now, last: s.now()}
	out.flush()
	ctx, closed, cancel := s.streamContext(r)
	defer cancel()
	var last uint64
	for out.err == nil {
		ev, err := sub.Next(ctx)
		if err != nil {
			if closed() {
				err = patina.Errorf(patina.EUNAVAILABLE, "the agent's API is shutting down; resume with GET /v1/subscriptions/%s?from=%d", sub.ID(), last)
			} else if ctx.Err() != nil {
				return // the client went away
			}
			out.buf = appendErrorLine(out.buf, err)
			out.flush()
			return
		}
		if ev.Kind == patina.EventChange || ev.Kind == patina.EventEndOfQuery {
			last = ev.ChangeID
		}
		out.buf = AppendEvent(out.buf, ev)
		if sub.Pending() == 0 {
			out.flush()
		} else {
			out.maybeFlush()
		}
	}
}

func appendErrorLine(b []byte, err error) []byte {
	b = append(b, `{"error":`...)
	b = appendString(b, patina.ErrorMessage(err))
	return append(b, "}\n"...)
}

// AppendEvent appends one subscription event as Corrosion's NDJSON line:
// {"columns":[...]}, {"row":[rowid,[cells]]}, {"eoq":{"time":s,"change_id":n}}
// or {"change":["insert"|"update"|"delete",rowid,[cells],change_id]}.
func AppendEvent(b []byte, ev patina.Event) []byte {
	switch ev.Kind {
	case patina.EventColumns:
		b = append(b, `{"columns":[`...)
		for i, c := range ev.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, c)
		}
		return append(b, "]}\n"...)
	case patina.EventRow:
		b = append(b, `{"row":[`...)
		b = strconv.AppendInt(b, ev.RowID, 10)
		b = appendCells(append(b, ','), ev.Cells)
		return append(b, "]}\n"...)
	case patina.EventEndOfQuery:
		b = append(b, `{"eoq":{"time":`...)
		b = appendFloat(b, ev.Seconds)
		b = append(b, `,"change_id":`...)
		b = strconv.AppendUint(b, ev.ChangeID, 10)
		return append(b, "}}\n"...)
	case patina.EventChange:
		b = append(b, `{"change":[`...)
		b = appendString(b, ev.Change.String())
		b = append(b, ',')
		b = strconv.AppendInt(b, ev.RowID, 10)
		b = appendCells(append(b, ','), ev.Cells)
		b = append(b, ',')
		b = strconv.AppendUint(b, ev.ChangeID, 10)
		return append(b, "]}\n"...)
	}
	return b
}

func appendCells(b []byte, cells []patina.Value) []byte {
	b = append(b, '[')
	for i, v := range cells {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendValue(b, v)
	}
	return append(b, ']')
}

// handleUpdates serves POST /v1/updates/{table}: {"notify":["update"|"delete",[pk...]]}
// for every changed primary key, no snapshot.
func (s *Server) handleUpdates(w http.ResponseWriter, r *http.Request) {
	st, err := s.Subscriptions.Updates(r.Context(), r.PathValue("table"))
	if err != nil {
		s.writeError(w, r, contextError(r.Context(), err, "update stream"))
		return
	}
	defer st.Close()
	h := w.Header()
	h.Set(HeaderQueryID, st.ID())
	h.Set(HeaderPatinaQueryID, st.ID())
	h.Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	out := &lineWriter{w: w, rc: http.NewResponseController(w), now: s.now, last: s.now()}
	out.flush()
	ctx, closed, cancel := s.streamContext(r)
	defer cancel()
	for out.err == nil {
		n, err := st.Next(ctx)
		if err != nil {
			if closed() {
				err = patina.Errorf(patina.EUNAVAILABLE, "the agent's API is shutting down; reconnect and re-read the table")
			} else if ctx.Err() != nil {
				return
			}
			out.buf = appendErrorLine(out.buf, err)
			out.flush()
			return
		}
		out.buf = AppendNotification(out.buf, n)
		if st.Pending() == 0 {
			out.flush()
		} else {
			out.maybeFlush()
		}
	}
}

// AppendNotification appends {"notify":["update"|"delete",[pk...]]}.
func AppendNotification(b []byte, n patina.Notification) []byte {
	b = append(b, `{"notify":[`...)
	b = appendString(b, n.Kind.String())
	b = appendCells(append(b, ','), n.PK)
	return append(b, "]}\n"...)
}

// SubscriptionJSON is one subscription in GET /v1/subscriptions and
// GET /v1/subscriptions/{id}/info.
type SubscriptionJSON struct {
	ID             string    `json:"id"`
	Hash           string    `json:"hash"`
	SQL            string    `json:"sql"`
	Columns        []string  `json:"columns"`
	Tables         []string  `json:"tables"`
	Strategy       string    `json:"strategy"`
	Subscribers    int       `json:"subscribers"`
	Rows           int       `json:"rows"`
	LastChangeID   uint64    `json:"last_change_id"`
	OldestChangeID uint64    `json:"oldest_change_id"`
	CreatedAt      time.Time `json:"created_at"`
	Evaluations    uint64    `json:"evaluations"`
	EvalSeconds    float64   `json:"eval_seconds"`
}

func subscriptionJSON(in patina.SubscriptionInfo) SubscriptionJSON {
	return SubscriptionJSON{ID: in.ID, Hash: in.Hash, SQL: in.SQL, Columns: in.Columns, Tables: in.Tables,
		Strategy: in.Strategy, Subscribers: in.Subscribers, Rows: in.Rows, LastChangeID: in.LastChangeID,
		OldestChangeID: in.OldestChangeID, CreatedAt: in.CreatedAt, Evaluations: in.Evaluations, EvalSeconds: in.EvalSeconds}
}

// Info converts back to the root type.
func (j SubscriptionJSON) Info() patina.SubscriptionInfo {
	return patina.SubscriptionInfo{ID: j.ID, Hash: j.Hash, SQL: j.SQL, Columns: j.Columns, Tables: j.Tables,
		Strategy: j.Strategy, Subscribers: j.Subscribers, Rows: j.Rows, LastChangeID: j.LastChangeID,
		OldestChangeID: j.OldestChangeID, CreatedAt: j.CreatedAt, Evaluations: j.Evaluations, EvalSeconds: j.EvalSeconds}
}

func (s *Server) handleListSubscriptions(w http.ResponseWriter, r *http.Request) {
	infos := s.Subscriptions.Subscriptions(r.Context())
	out := make([]SubscriptionJSON, len(infos))
	for i, in := range infos {
		out[i] = subscriptionJSON(in)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleSubscriptionInfo(w http.ResponseWriter, r *http.Request) {
	in, err := s.Subscriptions.SubscriptionInfo(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, subscriptionJSON(in))
}
