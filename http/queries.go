package http

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/patinadb/patina"
)

// Stream flushing: rows are buffered and flushed when the buffer passes
// flushBytes or when flushInterval has passed since the last flush, so a
// large result never sits in memory and a slow one still trickles out.
const (
	flushBytes    = 32 << 10
	flushInterval = 50 * time.Millisecond
)

// handleQueries serves POST /v1/queries[?timeout=secs]: one read-only
// statement, answered as NDJSON {"columns":[...]}, {"row":[rowid,[cells]]}...,
// {"eoq":{"time":s}}, or a final {"error":"..."} line if it fails midway.
func (s *Server) handleQueries(w http.ResponseWriter, r *http.Request) {
	timeout, body, err := s.readRequest(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	stmt, err := DecodeStatement(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := withTimeout(r.Context(), timeout, "query", "narrow it (a WHERE clause or a LIMIT)")
	defer cancel()

	start := s.now()
	rows, err := s.Service.Query(ctx, stmt)
	if err != nil {
		s.writeError(w, r, contextError(ctx, err, "query"))
		return
	}
	defer rows.Close()
	// Step once before answering, so that an error on the first step still
	// gets a proper status rather than a 200 stream ending in an error.
	more := rows.Next()
	if !more && rows.Err() != nil {
		s.writeError(w, r, contextError(ctx, rows.Err(), "query"))
		return
	}

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	out := &lineWriter{w: w, rc: http.NewResponseController(w), now: s.now, last: s.now()}

	line := append(out.buf, `{"columns":[`...)
	for i, c := range rows.Columns() {
		if i > 0 {
			line = append(line, ',')
		}
		line = appendString(line, c)
	}
	out.buf = append(line, "]}\n"...)
	out.flush()

	var rowid int64
	for more && out.err == nil {
		rowid++
		line := append(out.buf, `{"row":[`...)
		line = strconv.AppendInt(line, rowid, 10)
		line = append(line, ",["...)
		for i, v := range rows.Values() {
			if i > 0 {
				line = append(line, ',')
			}
			line = AppendValue(line, v)
		}
		out.buf = append(line, "]]}\n"...)
		out.maybeFlush()
		more = rows.Next()
	}
	if out.err != nil {
		return // the client went away; the deferred cancel stops the query
	}
	if err := rows.Err(); err != nil {
		err = contextError(ctx, err, "query")
		s.logError(r, ErrorStatus(err), err)
		line := append(out.buf, `{"error":`...)
		line = appendString(line, patina.ErrorMessage(err))
		out.buf = append(line, "}\n"...)
	} else {
		line := append(out.buf, `{"eoq":{"time":`...)
		line = appendFloat(line, s.now().Sub(start).Seconds())
		out.buf = append(line, "}}\n"...)
	}
	out.flush()
}

// lineWriter buffers NDJSON lines and flushes them through to the client.
type lineWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	now  func() time.Time
	last time.Time
	buf  []byte
	err  error
}

func (lw *lineWriter) maybeFlush() {
	if len(lw.buf) >= flushBytes || lw.now().Sub(lw.last) >= flushInterval {
		lw.flush()
	}
}

func (lw *lineWriter) flush() {
	if lw.err != nil {
		return
	}
	if len(lw.buf) > 0 {
		_, lw.err = lw.w.Write(lw.buf)
		lw.buf = lw.buf[:0]
	}
	if lw.err == nil {
		if err := lw.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			lw.err = err
		}
	}
	lw.last = lw.now()
}
