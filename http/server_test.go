package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patinadb/patina"
)

var _ Service = (*fakeService)(nil)

// fakeService is an in-memory Service: it records what it is asked and
// answers with canned results and errors.
type fakeService struct {
	actor patina.ActorID

	mu        sync.Mutex
	txs       [][]patina.Statement
	queries   []patina.Statement
	deadlines []bool // whether each call's context had a deadline

	txResult  *patina.TxResult
	txErr     error
	txBlock   chan struct{} // when set, Transact waits for it to close
	txEntered chan struct{} // when set, Transact sends on it on entry
	txWaitCtx bool          // Transact waits for its context to end

	queryErr    error
	columns     []string
	rows        [][]patina.Value
	rowsErr     error // Err after the last row
	rowsWaitCtx bool  // after the last row, Next waits for the context to end

	status patina.NodeStatus
}

func newFake() *fakeService {
	return &fakeService{
		actor:    testActor(1),
		txResult: &patina.TxResult{Results: []patina.StatementResult{{RowsAffected: 1, Seconds: 0.001}}},
	}
}

func testActor(b byte) patina.ActorID {
	var a patina.ActorID
	for i := range a {
		a[i] = b + byte(i)
	}
	return a
}

func (f *fakeService) Actor() patina.ActorID { return f.actor }

func (f *fakeService) Transact(ctx context.Context, stmts []patina.Statement) (*patina.TxResult, error) {
	f.mu.Lock()
	f.txs = append(f.txs, stmts)
	_, ok := ctx.Deadline()
	f.deadlines = append(f.deadlines, ok)
	f.mu.Unlock()
	if f.txEntered != nil {
		f.txEntered <- struct{}{}
	}
	if f.txBlock != nil {
		<-f.txBlock
	}
	if f.txWaitCtx {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.txResult, f.txErr
}

func (f *fakeService) Query(ctx context.Context, stmt patina.Statement) (patina.Rows, error) {
	f.mu.Lock()
	f.queries = append(f.queries, stmt)
	_, ok := ctx.Deadline()
	f.deadlines = append(f.deadlines, ok)
	f.mu.Unlock()
	if f.queryErr != nil {
		return nil, f.queryErr
	}
	return &fakeRows{f: f, ctx: ctx}, nil
}

func (f *fakeService) Status(ctx context.Context) patina.NodeStatus { return f.status }

type fakeRows struct {
	f      *fakeService
	ctx    context.Context
	i      int
	err    error
	closed bool
}

func (r *fakeRows) Columns() []string { return r.f.columns }

func (r *fakeRows) Next() bool {
	if r.i < len(r.f.rows) {
		r.i++
		return true
	}
	if r.f.rowsWaitCtx {
		<-r.ctx.Done()
		r.err = r.ctx.Err()
	} else {
		r.err = r.f.rowsErr
	}
	return false
}

func (r *fakeRows) Values() []patina.Value { return r.f.rows[r.i-1] }
func (r *fakeRows) Err() error             { return r.err }
func (r *fakeRows) Close() error           { r.closed = true; return nil }

// MustServer returns a Server over f with a clock that advances 250 ms at
// every reading.
func MustServer(tb testing.TB, f *fakeService, opts ...func(*Server)) *Server {
	tb.Helper()
	s := NewServer(f)
	s.Logger = nil
	var mu sync.Mutex
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(250 * time.Millisecond)
		return now
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// do sends one request to the handler and returns the recorded response.
func do(s *Server, method, target, body string, header ...string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// errorOf returns the "error" of a JSON body, failing if there is none.
func errorOf(tb testing.TB, rec *httptest.ResponseRecorder) string {
	tb.Helper()
	var eb errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == "" {
		tb.Fatalf("body %q is not an {\"error\": ...} body (%v)", rec.Body.String(), err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type = %q, want application/json", ct)
	}
	return eb.Error
}

func TestServer_Transactions(t *testing.T) {
	actor := testActor(1).String()
	t.Run("golden", func(t *testing.T) {
		f := newFake()
		f.txResult = &patina.TxResult{
			Results:   []patina.StatementResult{{RowsAffected: 1, Seconds: 0.001}, {RowsAffected: 2, Seconds: 0.002}},
			Changeset: &patina.Changeset{Actor: f.actor, Version: 7},
		}
		rec := do(MustServer(t, f), "POST", "/v1/transactions", `["INSERT INTO t VALUES (1)", ["UPDATE t SET a = ?", [2]]]`)
		want := `{"results":[{"rows_affected":1,"time":0.001},{"rows_affected":2,"time":0.002}],"time":0.25,"version":7,"actor_id":"` + actor + `"}` + "\n"
		if rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("got %d %s\nwant 200 %s", rec.Code, rec.Body, want)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		want2 := []patina.Statement{{SQL: "INSERT INTO t VALUES (1)"}, {SQL: "UPDATE t SET a = ?", Params: []patina.Value{patina.Int(2)}}}
		if len(f.txs) != 1 || len(f.txs[0]) != 2 || !statementEqual(f.txs[0][0], want2[0]) || !statementEqual(f.txs[0][1], want2[1]) {
			t.Errorf("service got %+v, want %+v", f.txs, want2)
		}
	})
	t.Run("nothing changed has null version", func(t *testing.T) {
		f := newFake()
		f.txResult = &patina.TxResult{Results: []patina.StatementResult{{RowsAffected: 0, Seconds: 0.5}}}
		rec := do(MustServer(t, f), "POST", "/v1/transactions", `["DELETE FROM t WHERE 0"]`)
		want := `{"results":[{"rows_affected":0,"time":0.5}],"time":0.25,"version":null,"actor_id":"` + actor + `"}` + "\n"
		if rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("got %d %s\nwant 200 %s", rec.Code, rec.Body, want)
		}
	})
	t.Run("sql error keeps corrosion shape", func(t *testing.T) {
		f := newFake()
		f.txErr = patina.Errorf(patina.EINVALID, "statement 1: no such table: t")
		rec := do(MustServer(t, f), "POST", "/v1/transactions", `["INSERT INTO t VALUES (1)"]`)
		want := `{"results":[{"error":"statement 1: no such table: t"}],"time":0,"version":null,"actor_id":"` + actor + `","error":"statement 1: no such table: t"}` + "\n"
		if rec.Code != 400 || rec.Body.String() != want {
			t.Errorf("got %d %s\nwant 400 %s", rec.Code, rec.Body, want)
		}
	})
	t.Run("empty array", func(t *testing.T) {
		f := newFake()
		rec := do(MustServer(t, f), "POST", "/v1/transactions", `[]`)
		if rec.Code != 400 || !strings.Contains(errorOf(t, rec), "no statements") {
			t.Errorf("got %d %s, want 400 naming the empty transaction", rec.Code, rec.Body)
		}
		if len(f.txs) != 0 {
			t.Errorf("service called with %v", f.txs)
		}
	})
	t.Run("param types reach the service", func(t *testing.T) {
		f := newFake()
		body := `[["INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?)", [null, true, false, 9223372036854775807, 1.5, "s", [0, 255], {"k": [1, 2]}, [1, "x"]]]]`
		rec := do(MustServer(t, f), "POST", "/v1/transactions", body)
		if rec.Code != 200 {
			t.Fatalf("got %d %s", rec.Code, rec.Body)
		}
		want := []patina.Value{patina.Null(), patina.Int(1), patina.Int(0), patina.Int(9223372036854775807), patina.Real(1.5),
			patina.Text("s"), patina.Blob([]byte{0, 255}), patina.Text(`{"k":[1,2]}`), patina.Text(`[1,"x"]`)}
		got := f.txs[0][0].Params
		if len(got) != len(want) {
			t.Fatalf("got %d params, want %d", len(got), len(want))
		}
		for i := range want {
			if !got[i].Equal(want[i]) {
				t.Errorf("param %d = %v (%v), want %v (%v)", i+1, got[i], got[i].Type, want[i], want[i].Type)
			}
		}
	})
}

func TestServer_Queries(t *testing.T) {
	t.Run("golden stream", func(t *testing.T) {
		f := newFake()
		f.columns = []string{"i", "r", "t", "b", "n"}
		f.rows = [][]patina.Value{
			{patina.Int(9223372036854775807), patina.Real(1), patina.Text(`say "hi"`), patina.Blob([]byte{0, 255}), patina.Null()},
			{patina.Int(-1), patina.Real(0.25), patina.Text(""), patina.Blob(nil), patina.Null()},
		}
		s := MustServer(t, f)
		fixed := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		s.Now = func() time.Time { return fixed }
		rec := do(s, "POST", "/v1/queries", `["SELECT * FROM t WHERE a = ?", [1]]`)
		want := `{"columns":["i","r","t","b","n"]}
{"row":[1,[9223372036854775807,1.0,"say \"hi\"",[0,255],null]]}
{"row":[2,[-1,0.25,"",[],null]]}
{"eoq":{"time":0.0}}
`
		if rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("got %d\n%s\nwant 200\n%s", rec.Code, rec.Body, want)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/x-ndjson" {
			t.Errorf("Content-Type = %q", ct)
		}
		if !rec.Flushed {
			t.Error("stream was never flushed")
		}
		if len(f.queries) != 1 || !statementEqual(f.queries[0], patina.Statement{SQL: "SELECT * FROM t WHERE a = ?", Params: []patina.Value{patina.Int(1)}}) {
			t.Errorf("service got %+v", f.queries)
		}
	})
	t.Run("empty result", func(t *testing.T) {
		f := newFake()
		f.columns = []string{"a"}
		rec := do(MustServer(t, f), "POST", "/v1/queries", `"SELECT a FROM t"`)
		lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
		if rec.Code != 200 || len(lines) != 2 || lines[0] != `{"columns":["a"]}` || !strings.HasPrefix(lines[1], `{"eoq":{"time":`) {
			t.Errorf("got %d %q", rec.Code, lines)
		}
	})
	t.Run("not read-only refused before streaming", func(t *testing.T) {
		f := newFake()
		f.queryErr = patina.Errorf(patina.EINVALID, `statement "DELETE FROM t" is not read-only; send writes to /v1/transactions`)
		rec := do(MustServer(t, f), "POST", "/v1/queries", `"DELETE FROM t"`)
		if rec.Code != 400 || !strings.Contains(errorOf(t, rec), "not read-only") {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("error on first step refused before streaming", func(t *testing.T) {
		f := newFake()
		f.columns = []string{"a"}
		f.rowsErr = patina.Errorf(patina.EINVALID, "query failed: no such column: zz")
		rec := do(MustServer(t, f), "POST", "/v1/queries", `"SELECT zz FROM t"`)
		if rec.Code != 400 || !strings.Contains(errorOf(t, rec), "no such column") {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("error mid-stream is the last line", func(t *testing.T) {
		f := newFake()
		f.columns = []string{"a"}
		f.rows = [][]patina.Value{{patina.Int(1)}}
		f.rowsErr = patina.Errorf(patina.EINTERNAL, "disk I/O error")
		rec := do(MustServer(t, f), "POST", "/v1/queries", `"SELECT a FROM t"`)
		want := "{\"columns\":[\"a\"]}\n{\"row\":[1,[1]]}\n{\"error\":\"disk I/O error\"}\n"
		if rec.Code != 200 || rec.Body.String() != want {
			t.Errorf("got %d %q, want %q", rec.Code, rec.Body, want)
		}
	})
	t.Run("bad statement", func(t *testing.T) {
		rec := do(MustServer(t, newFake()), "POST", "/v1/queries", `[1, 2]`)
		if rec.Code != 400 || !strings.Contains(errorOf(t, rec), "statement") {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
	})
}

func TestServer_ErrorTable(t *testing.T) {
	tests := []struct {
		err        error
		status     int
		retryAfter bool
	}{
		{patina.Errorf(patina.EINVALID, "m"), 400, false},
		{patina.Errorf(patina.EUNAUTHORIZED, "m"), 401, false},
		{patina.Errorf(patina.ENOTFOUND, "m"), 404, false},
		{patina.Errorf(patina.ECONFLICT, "m"), 409, false},
		{patina.Errorf(patina.ETOOLARGE, "m"), 413, false},
		{patina.Errorf(patina.ERATELIMIT, "m"), 429, true},
		{patina.Errorf(patina.EUNAVAILABLE, "m"), 503, true},
		{patina.Errorf(patina.ETIMEOUT, "m"), 504, false},
		{patina.Errorf(patina.EINTERNAL, "m"), 500, false},
		{errors.New("m"), 500, false},
		{&patina.Error{Code: "made_up", Message: "m"}, 500, false},
	}
	for _, tt := range tests {
		t.Run(patina.ErrorCode(tt.err), func(t *testing.T) {
			for _, route := range []string{"/v1/transactions", "/v1/queries"} {
				f := newFake()
				f.txErr, f.queryErr = tt.err, tt.err
				body := `"SELECT 1"`
				if route == "/v1/transactions" {
					body = `["SELECT 1"]`
				}
				rec := do(MustServer(t, f), "POST", route, body)
				if rec.Code != tt.status {
					t.Errorf("%s: status %d, want %d", route, rec.Code, tt.status)
				}
				if msg := errorOf(t, rec); msg != "m" {
					t.Errorf("%s: error %q, want %q", route, msg, "m")
				}
				if got := rec.Header().Get("Retry-After") != ""; got != tt.retryAfter {
					t.Errorf("%s: Retry-After %q, want present=%v", route, rec.Header().Get("Retry-After"), tt.retryAfter)
				}
			}
		})
	}
}

func TestServer_Routes(t *testing.T) {
	s := MustServer(t, newFake())
	t.Run("unknown route lists the routes", func(t *testing.T) {
		rec := do(s, "GET", "/v2/nope", "")
		msg := errorOf(t, rec)
		if rec.Code != 404 || !strings.Contains(msg, "GET /v2/nope") || !strings.Contains(msg, "POST /v1/transactions") || !strings.Contains(msg, "GET /v1/health") {
			t.Errorf("got %d %q", rec.Code, msg)
		}
	})
	t.Run("wrong method", func(t *testing.T) {
		rec := do(s, "GET", "/v1/transactions", "")
		if rec.Code != 405 || rec.Header().Get("Allow") != "POST" || !strings.Contains(errorOf(t, rec), "use POST") {
			t.Errorf("got %d %s Allow=%q", rec.Code, rec.Body, rec.Header().Get("Allow"))
		}
		rec = do(s, "POST", "/v1/health", "")
		if rec.Code != 405 || rec.Header().Get("Allow") != "GET" {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("extra routes", func(t *testing.T) {
		s := MustServer(t, newFake(), func(s *Server) {
			s.BearerToken = "tok"
			s.Extra = func(mux *http.ServeMux) {
				mux.HandleFunc("GET /v1/extra", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "extra") })
			}
		})
		if rec := do(s, "GET", "/v1/extra", "", "Authorization", "Bearer tok"); rec.Code != 200 || rec.Body.String() != "extra" {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
		if rec := do(s, "GET", "/v1/extra", ""); rec.Code != 401 {
			t.Errorf("extra route without token: got %d, want 401", rec.Code)
		}
	})
}

func TestServer_BearerAuth(t *testing.T) {
	s := MustServer(t, newFake(), func(s *Server) { s.BearerToken = "s3cret" })
	tests := []struct {
		name   string
		header []string
		status int
		want   string
	}{
		{"none", nil, 401, "requires a bearer token"},
		{"wrong", []string{"Authorization", "Bearer nope"}, 401, "wrong bearer token"},
		{"not bearer", []string{"Authorization", "Basic czNjcmV0"}, 401, "must read `Bearer <token>`"},
		{"right", []string{"Authorization", "Bearer s3cret"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, route := range []string{"/v1/transactions", "/v1/health"} {
				method, body := "POST", `["SELECT 1"]`
				if route == "/v1/health" {
					method, body = "GET", ""
				}
				rec := do(s, method, route, body, tt.header...)
				if rec.Code != tt.status {
					t.Fatalf("%s: got %d %s, want %d", route, rec.Code, rec.Body, tt.status)
				}
				if tt.status == 401 {
					if msg := errorOf(t, rec); !strings.Contains(msg, tt.want) {
						t.Errorf("%s: error %q does not contain %q", route, msg, tt.want)
					}
					if rec.Header().Get("WWW-Authenticate") == "" {
						t.Errorf("%s: no WWW-Authenticate header", route)
					}
				}
			}
		})
	}
}

func TestServer_BodyLimit(t *testing.T) {
	f := newFake()
	s := MustServer(t, f, func(s *Server) { s.MaxBodyBytes = 64 })
	big := `["INSERT INTO t VALUES ('` + strings.Repeat("x", 100) + `')"]`
	t.Run("content length", func(t *testing.T) {
		rec := do(s, "POST", "/v1/transactions", big)
		if msg := errorOf(t, rec); rec.Code != 413 || !strings.Contains(msg, "64 bytes") {
			t.Errorf("got %d %q, want 413 naming the 64 byte limit", rec.Code, msg)
		}
	})
	t.Run("chunked", func(t *testing.T) {
		req := httptest.NewRequest("POST", "/v1/queries", io.MultiReader(strings.NewReader(big)))
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if msg := errorOf(t, rec); rec.Code != 413 || !strings.Contains(msg, "64 bytes") {
			t.Errorf("got %d %q, want 413 naming the 64 byte limit", rec.Code, msg)
		}
	})
	if len(f.txs)+len(f.queries) != 0 {
		t.Errorf("service was called: %v %v", f.txs, f.queries)
	}
	if got := formatBytes(DefaultMaxBodyBytes); got != "4 MiB" {
		t.Errorf("default limit reads %q, want 4 MiB", got)
	}
}

func TestServer_ConcurrencyLimit(t *testing.T) {
	const limit = 3
	f := newFake()
	f.txBlock = make(chan struct{})
	f.txEntered = make(chan struct{}, limit)
	s := MustServer(t, f, func(s *Server) { s.MaxConcurrent = limit })

	var wg sync.WaitGroup
	codes := make([]int, limit)
	for i := range limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = do(s, "POST", "/v1/transactions", `["SELECT 1"]`).Code
		}()
	}
	for range limit {
		<-f.txEntered // all slots are taken
	}

	rec := do(s, "POST", "/v1/transactions", `["SELECT 1"]`)
	if msg := errorOf(t, rec); rec.Code != 503 || !strings.Contains(msg, "3 requests in flight") {
		t.Errorf("request over the limit: got %d %q, want 503", rec.Code, msg)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}
	if rec := do(s, "GET", "/v1/health", ""); rec.Code != 200 {
		t.Errorf("another route while transactions are saturated: got %d, want 200", rec.Code)
	}

	close(f.txBlock)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d in flight: got %d, want 200", i, c)
		}
	}
	f.txEntered = nil
	if rec := do(s, "POST", "/v1/transactions", `["SELECT 1"]`); rec.Code != 200 {
		t.Errorf("after the others finished: got %d, want 200", rec.Code)
	}
}

func TestServer_Timeout(t *testing.T) {
	t.Run("transaction", func(t *testing.T) {
		f := newFake()
		f.txWaitCtx = true
		rec := do(MustServer(t, f), "POST", "/v1/transactions?timeout=0.02", `["SELECT 1"]`)
		msg := errorOf(t, rec)
		if rec.Code != 504 {
			t.Errorf("status %d, want 504", rec.Code)
		}
		for _, want := range []string{"transaction did not finish within its timeout of 20ms", "make it smaller", "?timeout=SECONDS"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not contain %q", msg, want)
			}
		}
		if strings.Contains(msg, "context deadline exceeded") {
			t.Errorf("message %q leaks a bare context error", msg)
		}
	})
	t.Run("query mid-stream", func(t *testing.T) {
		f := newFake()
		f.columns = []string{"a"}
		f.rows = [][]patina.Value{{patina.Int(1)}}
		f.rowsWaitCtx = true
		s := MustServer(t, f, func(s *Server) { s.QueryTimeout = 20 * time.Millisecond })
		rec := do(s, "POST", "/v1/queries", `"SELECT a FROM t"`)
		lines := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
		last := lines[len(lines)-1]
		if rec.Code != 200 || len(lines) != 3 || !strings.Contains(last, `"error":"query did not finish within its timeout of 20ms; narrow it`) {
			t.Errorf("got %d %q", rec.Code, lines)
		}
	})
	t.Run("bare deadline from the service", func(t *testing.T) {
		f := newFake()
		f.txErr = context.DeadlineExceeded
		rec := do(MustServer(t, f), "POST", "/v1/transactions", `["SELECT 1"]`)
		if msg := errorOf(t, rec); rec.Code != 504 || !strings.Contains(msg, "transaction timed out inside the agent") {
			t.Errorf("got %d %q", rec.Code, msg)
		}
	})
	t.Run("deadlines", func(t *testing.T) {
		tests := []struct {
			target string
			want   bool
		}{
			{"/v1/transactions", true},
			{"/v1/transactions?timeout=5", true},
			{"/v1/transactions?timeout=0", false},
		}
		for _, tt := range tests {
			f := newFake()
			if rec := do(MustServer(t, f), "POST", tt.target, `["SELECT 1"]`); rec.Code != 200 {
				t.Fatalf("%s: got %d %s", tt.target, rec.Code, rec.Body)
			}
			if f.deadlines[0] != tt.want {
				t.Errorf("%s: deadline set = %v, want %v", tt.target, f.deadlines[0], tt.want)
			}
		}
		f := newFake()
		s := MustServer(t, f, func(s *Server) { s.QueryTimeout = 0 })
		do(s, "POST", "/v1/queries", `"SELECT 1"`)
		if f.deadlines[0] {
			t.Error("QueryTimeout 0 still set a deadline")
		}
	})
	t.Run("bad timeout", func(t *testing.T) {
		for _, v := range []string{"abc", "-1", "NaN"} {
			rec := do(MustServer(t, newFake()), "POST", "/v1/queries?timeout="+v, `"SELECT 1"`)
			if msg := errorOf(t, rec); rec.Code != 400 || !strings.Contains(msg, "?timeout=30") {
				t.Errorf("timeout=%s: got %d %q", v, rec.Code, msg)
			}
		}
	})
}

func TestServer_Health(t *testing.T) {
	f := newFake()
	f.status = patina.NodeStatus{
		Members: []patina.Member{
			{State: patina.MemberAlive}, {State: patina.MemberAlive}, {State: patina.MemberSuspect}, {State: patina.MemberDead},
		},
		GapVersions:   10,
		Queues:        map[string]patina.QueueStatus{"apply": {Len: 50, Cap: 1000}, "broadcast": {Len: 7}},
		LagP99Seconds: 2.5,
	}
	s := MustServer(t, f)
	tests := []struct {
		query  string
		status int
		errSub string
	}{
		{"", 200, ""},
		{"?gaps=10", 200, ""},
		{"?gaps=9", 503, "10 versions missing in gaps, more than ?gaps=9"},
		{"?gaps=9&failure_status=500", 500, "gaps"},
		{"?max_queue=50", 200, ""},
		{"?max_queue=49", 503, "50 changes waiting in the apply queue"},
		{"?p99_lag=3", 200, ""},
		{"?p99_lag=2", 503, "p99 replication lag 2.5s"},
		{"?p99_lag=2&queue_size=50", 200, ""},
		{"?p99_lag=2&queue_size=49", 503, "lag"},
		{"?gaps=1&max_queue=1&p99_lag=1", 503, "gaps=1; 50 changes"},
		{"?gaps=x", 400, "?gaps=x is not a non-negative integer"},
		{"?p99_lag=-1", 400, "p99_lag"},
		{"?failure_status=99", 400, "not an HTTP status"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			rec := do(s, "GET", "/v1/health"+tt.query, "")
			if rec.Code != tt.status {
				t.Errorf("status %d %s, want %d", rec.Code, rec.Body, tt.status)
			}
			if tt.status == 400 {
				if msg := errorOf(t, rec); !strings.Contains(msg, tt.errSub) {
					t.Errorf("error %q does not contain %q", msg, tt.errSub)
				}
				return
			}
			var hb healthBody
			if err := json.Unmarshal(rec.Body.Bytes(), &hb); err != nil {
				t.Fatal(err)
			}
			want := healthResponse{Gaps: 10, Members: 2, P99Lag: 2.5, QueueSize: 50}
			if hb.Response != want {
				t.Errorf("response = %+v, want %+v", hb.Response, want)
			}
			if !strings.Contains(hb.Error, tt.errSub) || (tt.errSub == "") != (hb.Error == "") {
				t.Errorf("error %q, want one containing %q", hb.Error, tt.errSub)
			}
		})
	}
	rec := do(s, "GET", "/v1/health", "")
	if want := `{"response":{"gaps":10,"members":2,"p99_lag":2.5,"queue_size":50}}` + "\n"; rec.Body.String() != want {
		t.Errorf("body %s, want %s", rec.Body, want)
	}
}

func TestServer_MembersAndStatus(t *testing.T) {
	f := newFake()
	f.status = patina.NodeStatus{
		Actor: f.actor, Region: "ams", ClusterID: 3,
		Members: []patina.Member{{Actor: testActor(2), Name: "n2", Addr: "10.0.0.2:7946", APIAddr: "10.0.0.2:8080",
			Region: "fra", ClusterID: 3, Protocol: 1, State: patina.MemberSuspect}},
		Heads:  map[patina.ActorID]patina.Version{testActor(2): 42},
		Queues: map[string]patina.QueueStatus{"apply": {Len: 1, Cap: 2, Dropped: 3}},
	}
	s := MustServer(t, f)
	rec := do(s, "GET", "/v1/members", "")
	want := `[{"actor_id":"` + testActor(2).String() + `","name":"n2","addr":"10.0.0.2:7946","api_addr":"10.0.0.2:8080","region":"fra","cluster_id":3,"protocol":1,"state":"suspect"}]` + "\n"
	if rec.Code != 200 || rec.Body.String() != want {
		t.Errorf("members: got %d %s\nwant %s", rec.Code, rec.Body, want)
	}
	rec = do(s, "GET", "/v1/status", "")
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["actor_id"] != f.actor.String() || got["region"] != "ams" {
		t.Errorf("status = %s", rec.Body)
	}
	if heads, _ := got["heads"].(map[string]any); heads[testActor(2).String()] != 42.0 {
		t.Errorf("heads = %v, want keyed by hex actor id", got["heads"])
	}
	if q, _ := got["queues"].(map[string]any); q["apply"] == nil {
		t.Errorf("queues = %v", got["queues"])
	}
}

func TestServer_Config(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Server)
		want string
	}{
		{"no service", func(s *Server) { s.Service = nil }, "Service is nil"},
		{"body", func(s *Server) { s.MaxBodyBytes = 0 }, "MaxBodyBytes"},
		{"timeout", func(s *Server) { s.QueryTimeout = -1 }, "QueryTimeout"},
		{"concurrency", func(s *Server) { s.MaxConcurrent = 0 }, "MaxConcurrent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(newFake())
			s.Addr = "127.0.0.1:0"
			tt.set(s)
			if err := s.Open(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
