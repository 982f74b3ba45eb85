// Package client is a Go client of a patina agent's HTTP API (and of
// Corrosion's, whose shapes patina follows): transactions, with
// read-your-writes waits, queries, subscriptions that resume by themselves
// after a disconnect or an agent restart, and update streams.
//
//	c := client.New("127.0.0.1:8080")
//	res, err := c.Transact(ctx, []patina.Statement{{SQL: "INSERT ..."}}, client.Wait("all"))
//	sub, err := c.Subscribe(ctx, patina.Statement{SQL: "SELECT id, address FROM services WHERE name = 'web'"})
//	for {
//		ev, err := sub.Next(ctx) // columns, rows, end of rows, then changes
//		...
//	}
//
// Errors the agent answers carry a patina error code (patina.ErrorCode):
// EGONE when a subscription no longer keeps the changes a resume needs
// (resubscribe), ETIMEOUT when a ?wait= ran out of time (the write is
// committed; TxError says which version).
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/patinadb/patina"
	phttp "github.com/patinadb/patina/http"
)

// Defaults for Client's fields.
const (
	DefaultResumeAttempts = 10
	DefaultMinBackoff     = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
)

// Client talks to one agent. Its zero value is not usable: set BaseURL, or
// use New.
type Client struct {
	// BaseURL is the agent's API, "http://host:port"; "host:port" alone
	// means http.
	BaseURL string
	// Token, when set, is sent as `Authorization: Bearer <token>`.
	Token string
	// HTTP does the requests; nil means http.DefaultClient. Streams last
	// as long as the caller reads them, so give it no overall Timeout.
	HTTP *http.Client
	// ResumeAttempts is how many times in a row a subscription tries to
	// resume after its stream broke before giving up. Default
	// DefaultResumeAttempts (10).
	ResumeAttempts int
	// MinBackoff and MaxBackoff bound the delay between resume attempts;
	// it doubles from MinBackoff. Defaults DefaultMinBackoff (100 ms) and
	// DefaultMaxBackoff (5 s).
	MinBackoff, MaxBackoff time.Duration
}

// New returns a client of the agent at baseURL with default settings.
func New(baseURL string) *Client {
	return &Client{BaseURL: baseURL, ResumeAttempts: DefaultResumeAttempts, MinBackoff: DefaultMinBackoff, MaxBackoff: DefaultMaxBackoff}
}

// TxOption tunes a transaction.
type TxOption func(url.Values)

// Wait makes Transact return only once the write is applied on "all" live
// nodes, every node of the writer's "region", or a number of nodes ("3").
func Wait(target string) TxOption { return func(v url.Values) { v.Set("wait", target) } }

// Timeout bounds the transaction and its wait on the agent.
func Timeout(d time.Duration) TxOption {
	return func(v url.Values) { v.Set("timeout", d.String()) }
}

// TxResult is a committed transaction.
type TxResult struct {
	// Version is the transaction's version on its node (0 when it changed
	// nothing); ActorID the node.
	Version uint64
	ActorID string
	// RowsAffected per statement.
	RowsAffected []int64
	Seconds      float64
}

// TxError is a transaction that was committed but whose ?wait= failed; it
// unwraps to the agent's error (code ETIMEOUT, naming the nodes that have
// not applied it).
type TxError struct {
	Result TxResult
	Err    error
}

func (e *TxError) Error() string {
	return fmt.Sprintf("version %d committed on %s, but: %v", e.Result.Version, e.Result.ActorID, e.Err)
}

func (e *TxError) Unwrap() error { return e.Err }

// Transact runs statements as one transaction.
func (c *Client) Transact(ctx context.Context, stmts []patina.Statement, opts ...TxOption) (TxResult, error) {
	body := []byte{'['}
	for i, st := range stmts {
		if i > 0 {
			body = append(body, ',')
		}
		b, err := phttp.MarshalStatement(st)
		if err != nil {
			return TxResult{}, err
		}
		body = append(body, b...)
	}
	body = append(body, ']')
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/transactions", q, body, true)
	if err != nil {
		return TxResult{}, err
	}
	defer resp.Body.Close()
	var tx phttp.TxResponse
	if err := json.NewDecoder(resp.Body).Decode(&tx); err != nil {
		return TxResult{}, fmt.Errorf("decode transaction response: %w", err)
	}
	res := TxResult{ActorID: tx.ActorID, Seconds: tx.Time}
	if tx.Version != nil {
		res.Version = *tx.Version
	}
	for _, r := range tx.Results {
		res.RowsAffected = append(res.RowsAffected, r.RowsAffected)
	}
	if resp.StatusCode != http.StatusOK {
		serr := &phttp.StatusError{StatusCode: resp.StatusCode, Message: tx.Error}
		if tx.Version != nil {
			return res, &TxError{Result: res, Err: serr}
		}
		return TxResult{}, serr
	}
	return res, nil
}

// Rows is a query's result.
type Rows struct {
	Columns []string
	Rows    [][]patina.Value
	Seconds float64
}

// Query runs one read-only statement.
func (c *Client) Query(ctx context.Context, stmt patina.Statement) (*Rows, error) {
	body, err := phttp.MarshalStatement(stmt)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/queries", nil, body, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &Rows{}
	rd := newLineReader(resp.Body)
	for {
		l, err := rd.next()
		if err != nil {
			return nil, fmt.Errorf("read query result after %d rows: %w", len(out.Rows), err)
		}
		switch {
		case l.Error != nil:
			return nil, patina.Errorf(patina.EINTERNAL, "query failed after %d rows: %s", len(out.Rows), *l.Error)
		case l.Columns != nil:
			out.Columns = l.Columns
		case l.Row != nil:
			_, cells, err := l.row()
			if err != nil {
				return nil, err
			}
			out.Rows = append(out.Rows, cells)
		case l.EOQ != nil:
			out.Seconds = l.EOQ.Time
			return out, nil
		}
	}
}

// Subscriptions lists the agent's subscriptions.
func (c *Client) Subscriptions(ctx context.Context) ([]patina.SubscriptionInfo, error) {
	var js []phttp.SubscriptionJSON
	if err := c.getJSON(ctx, "/v1/subscriptions", &js); err != nil {
		return nil, err
	}
	out := make([]patina.SubscriptionInfo, len(js))
	for i, j := range js {
		out[i] = j.Info()
	}
	return out, nil
}

// SubscriptionInfo describes one subscription.
func (c *Client) SubscriptionInfo(ctx context.Context, id string) (patina.SubscriptionInfo, error) {
	var j phttp.SubscriptionJSON
	if err := c.getJSON(ctx, "/v1/subscriptions/"+url.PathEscape(id)+"/info", &j); err != nil {
		return patina.SubscriptionInfo{}, err
	}
	return j.Info(), nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil, false)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// do sends a request. Statuses other than 200 become a *phttp.StatusError
// (which unwraps to a *patina.Error with the matching code), except that
// keepBody returns the response of a failed transaction for its body.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, keepBody bool) (*http.Response, error) {
	base := strings.TrimRight(c.BaseURL, "/")
	if base == "" {
		return nil, errors.New("patina client: no agent address (BaseURL)")
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	if keepBody && resp.Header.Get("Content-Type") == "application/json" {
		// A transaction answers its failures with its own body shape.
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		var tx phttp.TxResponse
		if json.Unmarshal(data, &tx) == nil && (tx.Error != "" || tx.Version != nil) {
			resp.Body = io.NopCloser(bytes.NewReader(data))
			return resp, nil
		}
		return nil, statusError(resp.StatusCode, data)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return nil, statusError(resp.StatusCode, data)
}

func statusError(status int, data []byte) error {
	var eb struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	} else if msg == "" {
		msg = http.StatusText(status)
	}
	return &phttp.StatusError{StatusCode: status, Message: msg}
}

// line is one NDJSON line of a query, subscription or update stream.
type line struct {
	Columns []string          `json:"columns"`
	Row     []json.RawMessage `json:"row"`
	EOQ     *struct {
		Time     float64 `json:"time"`
		ChangeID *uint64 `json:"change_id"`
	} `json:"eoq"`
	Change []json.RawMessage `json:"change"`
	Notify []json.RawMessage `json:"notify"`
	Error  *string           `json:"error"`
}

type lineReader struct{ sc *bufio.Scanner }

func newLineReader(r io.Reader) *lineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<30)
	return &lineReader{sc: sc}
}

// next reads one line; io.ErrUnexpectedEOF when the stream ends.
func (r *lineReader) next() (*line, error) {
	for r.sc.Scan() {
		b := bytes.TrimSpace(r.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var l line
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("decode stream line %q: %w", shorten(string(b)), err)
		}
		return &l, nil
	}
	if err := r.sc.Err(); err != nil {
		return nil, err
	}
	return nil, io.ErrUnexpectedEOF
}

func (l *line) row() (int64, []patina.Value, error) {
	if len(l.Row) != 2 {
		return 0, nil, fmt.Errorf("row line is not [rowid, [cells]]")
	}
	var id int64
	if err := json.Unmarshal(l.Row[0], &id); err != nil {
		return 0, nil, fmt.Errorf("row id: %w", err)
	}
	cells, err := decodeCells(l.Row[1])
	return id, cells, err
}

func decodeCells(raw json.RawMessage) ([]patina.Value, error) {
	var cells []json.RawMessage
	if err := json.Unmarshal(raw, &cells); err != nil {
		return nil, fmt.Errorf("cells: %w", err)
	}
	out := make([]patina.Value, len(cells))
	for i, c := range cells {
		v, err := phttp.DecodeValue(c)
		if err != nil {
			return nil, fmt.Errorf("cell %d: %w", i+1, err)
		}
		out[i] = v
	}
	return out, nil
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
