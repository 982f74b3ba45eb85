package http

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

// MustClient serves s with httptest and returns a client of it.
func MustClient(tb testing.TB, s *Server) *Client {
	tb.Helper()
	ts := httptest.NewServer(s.Handler())
	tb.Cleanup(ts.Close)
	return &Client{BaseURL: ts.URL, Token: s.BearerToken, HTTP: ts.Client()}
}

func TestClient_Transact(t *testing.T) {
	f := newFake()
	f.txResult = &patina.TxResult{
		Results:   []patina.StatementResult{{RowsAffected: 1, Seconds: 0.5}, {RowsAffected: 3, Seconds: 0.25}},
		Changeset: &patina.Changeset{Version: 9},
	}
	c := MustClient(t, MustServer(t, f, func(s *Server) { s.BearerToken = "tok" }))
	stmts := []patina.Statement{
		{SQL: "INSERT INTO t VALUES (?, ?, ?, ?, ?)", Params: []patina.Value{
			patina.Null(), patina.Int(math.MinInt64), patina.Real(2), patina.Text(`{"not":"json"}`), patina.Blob([]byte{0, 1, 255}),
		}},
		{SQL: "UPDATE t SET a = :a", Named: map[string]patina.Value{":a": patina.Int(math.MaxInt64)}},
	}
	resp, err := c.Transact(context.Background(), stmts)
	if err != nil {
		t.Fatal(err)
	}
	v := patina.Version(9)
	want := TxResponse{
		Results: []TxStatementResult{{RowsAffected: 1, Time: 0.5}, {RowsAffected: 3, Time: 0.25}},
		Time:    0.25, Version: &v, ActorID: f.actor.String(),
	}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("response = %+v, want %+v", resp, want)
	}
	if len(f.txs) != 1 || len(f.txs[0]) != 2 || !statementEqual(f.txs[0][0], stmts[0]) || !statementEqual(f.txs[0][1], stmts[1]) {
		t.Errorf("service got %+v, want %+v", f.txs, stmts)
	}
}

func TestClient_Query(t *testing.T) {
	f := newFake()
	f.columns = []string{"i", "r", "t", "b", "n"}
	f.rows = [][]patina.Value{
		{patina.Int(math.MaxInt64), patina.Real(1), patina.Text("x"), patina.Blob([]byte{7, 8}), patina.Null()},
		{patina.Int(-3), patina.Real(0.5), patina.Text(""), patina.Blob(nil), patina.Null()},
	}
	c := MustClient(t, MustServer(t, f))
	cols, rows, err := c.Query(context.Background(), patina.Statement{SQL: "SELECT * FROM t WHERE k = ?", Params: []patina.Value{patina.Text("k")}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cols, f.columns) {
		t.Errorf("columns = %q, want %q", cols, f.columns)
	}
	want := [][]any{
		{int64(math.MaxInt64), 1.0, "x", []byte{7, 8}, nil},
		{int64(-3), 0.5, "", []byte{}, nil},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows = %#v, want %#v", rows, want)
	}

	f.rowsErr = patina.Errorf(patina.EINTERNAL, "disk I/O error")
	_, _, err = c.Query(context.Background(), patina.Statement{SQL: "SELECT 1"})
	if err == nil || !strings.Contains(err.Error(), "query failed after 2 rows: disk I/O error") {
		t.Errorf("mid-stream error = %v", err)
	}
}

func TestClient_Errors(t *testing.T) {
	f := newFake()
	f.txErr = patina.Errorf(patina.ECONFLICT, "version 3 is already taken")
	f.queryErr = patina.Errorf(patina.EINVALID, "statement is not read-only")
	s := MustServer(t, f, func(s *Server) { s.BearerToken = "tok" })
	c := MustClient(t, s)

	_, err := c.Transact(context.Background(), []patina.Statement{{SQL: "INSERT"}})
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusConflict || se.Message != "version 3 is already taken" {
		t.Errorf("Transact error = %#v", err)
	}
	if patina.ErrorCode(err) != patina.ECONFLICT || patina.ErrorMessage(err) != "version 3 is already taken" {
		t.Errorf("code %q message %q", patina.ErrorCode(err), patina.ErrorMessage(err))
	}
	if !strings.Contains(err.Error(), "HTTP 409") {
		t.Errorf("error %q does not name the status", err)
	}

	_, _, err = c.Query(context.Background(), patina.Statement{SQL: "DELETE FROM t"})
	if !errors.As(err, &se) || se.StatusCode != 400 || patina.ErrorCode(err) != patina.EINVALID {
		t.Errorf("Query error = %v", err)
	}

	c.Token = "wrong"
	_, err = c.Members(context.Background())
	if !errors.As(err, &se) || se.StatusCode != 401 || !strings.Contains(se.Message, "wrong bearer token") || patina.ErrorCode(err) != patina.EUNAUTHORIZED {
		t.Errorf("Members with a wrong token: %v", err)
	}

	_, err = (&Client{}).Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no agent address") {
		t.Errorf("client without address: %v", err)
	}

	_, err = c.Transact(context.Background(), []patina.Statement{{SQL: "SELECT ?", Params: []patina.Value{patina.Real(math.NaN())}}})
	if patina.ErrorCode(err) != patina.EINVALID {
		t.Errorf("NaN parameter: %v", err)
	}
}

func TestClient_MembersAndStatus(t *testing.T) {
	f := newFake()
	f.status = patina.NodeStatus{
		Actor: f.actor, Region: "ams", ClusterID: 3,
		Members: []patina.Member{
			{Actor: testActor(2), Name: "n2", Addr: "10.0.0.2:7946", APIAddr: "10.0.0.2:8080", Region: "fra", ClusterID: 3, Protocol: 1, State: patina.MemberAlive},
			{Actor: testActor(3), Name: "n3", Addr: "10.0.0.3:7946", Region: "ams", State: patina.MemberLeft},
		},
		Heads:       map[patina.ActorID]patina.Version{testActor(2): 42, f.actor: 7},
		GapVersions: 5, Partials: 1,
		Queues:   map[string]patina.QueueStatus{"apply": {Len: 1, Cap: 2, Dropped: 3}},
		Deferred: 4, Quarantined: 2, LagP99Seconds: 0.75,
	}
	c := MustClient(t, MustServer(t, f))
	ms, err := c.Members(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ms, f.status.Members) {
		t.Errorf("members = %+v, want %+v", ms, f.status.Members)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, f.status) {
		t.Errorf("status = %+v\nwant %+v", st, f.status)
	}
}

func TestServer_OpenClose(t *testing.T) {
	f := newFake()
	s := NewServer(f)
	s.Logger = nil
	s.Addr = "127.0.0.1:0"
	if s.BoundAddr() != "" {
		t.Errorf("BoundAddr before Open = %q", s.BoundAddr())
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(s.BoundAddr(), ":0") {
		t.Errorf("BoundAddr = %q, want the real port", s.BoundAddr())
	}
	c := &Client{BaseURL: s.BoundAddr()} // no scheme: http
	if _, err := c.Transact(context.Background(), []patina.Statement{{SQL: "SELECT 1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := (&Client{BaseURL: s.URL()}).Members(context.Background()); err == nil {
		t.Error("request after Close succeeded")
	}
}
