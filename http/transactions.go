package http

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/patinadb/patina"
)

// TxResponse is the body of POST /v1/transactions, Corrosion's shape:
// {"results":[...],"time":s,"version":n|null,"actor_id":"<32 hex>"}. On
// failure Results holds one {"error": msg} and Error repeats msg at the top
// level (a patina addition, so every error body has "error").
type TxResponse struct {
	Results []TxStatementResult `json:"results"`
	Time    float64             `json:"time"`            // seconds spent in the transaction
	Version *patina.Version     `json:"version"`         // nil when nothing changed
	ActorID string              `json:"actor_id"`        // the node's actor id, 32 hex digits
	Error   string              `json:"error,omitempty"` // set on failure
}

// TxStatementResult is one statement's outcome, {"rows_affected":n,"time":s},
// or {"error":"msg"} when the transaction failed.
type TxStatementResult struct {
	RowsAffected int64   `json:"rows_affected"`
	Time         float64 `json:"time"`
	Error        string  `json:"error,omitempty"`
}

// MarshalJSON writes an error result as {"error": msg} alone, as Corrosion
// does.
func (r TxStatementResult) MarshalJSON() ([]byte, error) {
	if r.Error != "" {
		return json.Marshal(errorBody{Error: r.Error})
	}
	type plain struct {
		RowsAffected int64   `json:"rows_affected"`
		Time         float64 `json:"time"`
	}
	return json.Marshal(plain{r.RowsAffected, r.Time})
}

// handleTransactions serves POST /v1/transactions[?timeout=secs]: a JSON
// array of statements run as one transaction.
func (s *Server) handleTransactions(w http.ResponseWriter, r *http.Request) {
	timeout, body, err := s.readRequest(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	stmts, err := DecodeStatements(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	wait, waitTimeout, err := s.waitParams(r, timeout)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ctx, cancel := withTimeout(r.Context(), timeout, "transaction", "make it smaller (fewer or cheaper statements)")
	defer cancel()

	actor := s.Service.Actor().String()
	start := s.now()
	res, err := s.Service.Transact(ctx, stmts)
	if err == nil && res == nil {
		err = patina.Errorf(patina.EINTERNAL, "transaction returned no result and no error (a bug in the agent)")
	}
	if err != nil {
		err = contextError(ctx, err, "transaction")
		status := setErrorHeaders(w, err)
		s.logError(r, status, err)
		msg := patina.ErrorMessage(err)
		writeJSON(w, status, TxResponse{
			Results: []TxStatementResult{{Error: msg}},
			ActorID: actor,
			Error:   msg,
		})
		return
	}
	resp := TxResponse{
		Results: make([]TxStatementResult, len(res.Results)),
		Time:    s.now().Sub(start).Seconds(),
		ActorID: actor,
	}
	for i, sr := range res.Results {
		resp.Results[i] = TxStatementResult{RowsAffected: sr.RowsAffected, Time: sr.Seconds}
	}
	if res.Changeset != nil {
		v := res.Changeset.Version
		resp.Version = &v
		if wait != nil {
			if err := s.waitApplied(r, res.Changeset.Version, *wait, waitTimeout); err != nil {
				// The write is committed; the answer says so and why the
				// wait failed, with the version to look for.
				status := setErrorHeaders(w, err)
				s.logError(r, status, err)
				resp.Error = patina.ErrorMessage(err)
				writeJSON(w, status, resp)
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// waitParams parses ?wait=all|region|N; the wait is bounded by ?timeout
// when given, else by DefaultWaitTimeout.
func (s *Server) waitParams(r *http.Request, timeout time.Duration) (*patina.WaitTarget, time.Duration, error) {
	v := r.URL.Query().Get("wait")
	if v == "" {
		return nil, 0, nil
	}
	if s.Waiter == nil {
		return nil, 0, patina.Errorf(patina.EINVALID, "this agent does not serve ?wait= (no replication waiter is configured); send the transaction without it")
	}
	t, err := patina.ParseWaitTarget(v)
	if err != nil {
		return nil, 0, err
	}
	if !r.URL.Query().Has("timeout") {
		timeout = DefaultWaitTimeout
	}
	return &t, timeout, nil
}

// waitApplied waits until the version is applied on the target nodes.
func (s *Server) waitApplied(r *http.Request, v patina.Version, t patina.WaitTarget, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(r.Context())
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(r.Context(), timeout)
	}
	defer cancel()
	return s.Waiter.WaitApplied(ctx, s.Service.Actor(), v, t)
}
