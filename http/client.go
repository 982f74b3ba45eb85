package http

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/patinadb/patina"
)

// Client is a small client of the API, used by the CLI.
type Client struct {
	// BaseURL is the agent's API address, e.g. "http://127.0.0.1:8080";
	// "host:port" alone means http.
	BaseURL string
	// Token, when set, is sent as `Authorization: Bearer <token>`.
	Token string
	// HTTP does the requests. nil means http.DefaultClient.
	HTTP *http.Client
}

// StatusError is an error answered by the server: its HTTP status and the
// message of its {"error": "..."} body. It unwraps to a *patina.Error whose
// code matches the status, so patina.ErrorCode works on it.
type StatusError struct {
	StatusCode int
	Message    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.StatusCode, http.StatusText(e.StatusCode))
}

// Unwrap returns the error as a *patina.Error.
func (e *StatusError) Unwrap() error {
	return &patina.Error{Code: statusCode(e.StatusCode), Message: e.Message}
}

// Transact runs stmts as one transaction.
func (c *Client) Transact(ctx context.Context, stmts []patina.Statement) (TxResponse, error) {
	body := []byte{'['}
	for i, st := range stmts {
		if i > 0 {
			body = append(body, ',')
		}
		var err error
		if body, err = appendStatement(body, st); err != nil {
			return TxResponse{}, err
		}
	}
	body = append(body, ']')
	resp, err := c.do(ctx, http.MethodPost, "/v1/transactions", body)
	if err != nil {
		return TxResponse{}, err
	}
	defer resp.Body.Close()
	var tx TxResponse
	if err := json.NewDecoder(resp.Body).Decode(&tx); err != nil {
		return TxResponse{}, fmt.Errorf("decode transaction response: %w", err)
	}
	return tx, nil
}

// Query runs one read-only statement and returns its columns and rows. Cells
// are nil, int64, float64, string or []byte (a JSON array of byte numbers).
// A refusal before the stream is a *StatusError; a failure midway is a
// *patina.Error with the rows read so far.
func (c *Client) Query(ctx context.Context, stmt patina.Statement) (columns []string, rows [][]any, err error) {
	body, err := MarshalStatement(stmt)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/queries", body)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<30)
	for sc.Scan() {
		var line struct {
			Columns []string          `json:"columns"`
			Row     []json.RawMessage `json:"row"`
			EOQ     *json.RawMessage  `json:"eoq"`
			Error   *string           `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, nil, fmt.Errorf("decode query stream line %q: %w", shorten(sc.Text()), err)
		}
		switch {
		case line.Error != nil:
			// The status (200) was sent before the failure; the line is all
			// there is to go on.
			return columns, rows, patina.Errorf(patina.EINTERNAL, "query failed after %d rows: %s", len(rows), *line.Error)
		case line.EOQ != nil:
			return columns, rows, nil
		case line.Columns != nil:
			columns = line.Columns
		case line.Row != nil:
			if len(line.Row) != 2 {
				return nil, nil, fmt.Errorf("decode query stream: row %q is not [rowid, [cells]]", shorten(sc.Text()))
			}
			row, err := decodeCells(line.Row[1])
			if err != nil {
				return nil, nil, fmt.Errorf("decode query stream row %d: %w", len(rows)+1, err)
			}
			rows = append(rows, row)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read query stream after %d rows: %w", len(rows), err)
	}
	return nil, nil, fmt.Errorf("query stream ended after %d rows without its end marker; the agent may have restarted, retry", len(rows))
}

// decodeCells converts a JSON array of result cells to Go values.
func decodeCells(raw []byte) ([]any, error) {
	var cells []json.RawMessage
	if err := json.Unmarshal(raw, &cells); err != nil {
		return nil, err
	}
	out := make([]any, len(cells))
	for i, cell := range cells {
		v, err := DecodeValue(cell)
		if err != nil {
			return nil, fmt.Errorf("cell %d: %w", i+1, err)
		}
		switch v.Type {
		case patina.TypeInteger:
			out[i] = v.Int
		case patina.TypeReal:
			out[i] = v.Float
		case patina.TypeText:
			out[i] = string(v.Bytes)
		case patina.TypeBlob:
			out[i] = v.Bytes
		}
	}
	return out, nil
}

// Members returns the cluster's members as the agent sees them.
func (c *Client) Members(ctx context.Context) ([]patina.Member, error) {
	var mjs []memberJSON
	if err := c.getJSON(ctx, "/v1/members", &mjs); err != nil {
		return nil, err
	}
	ms := make([]patina.Member, 0, len(mjs))
	for _, mj := range mjs {
		m, err := mj.member()
		if err != nil {
			return nil, fmt.Errorf("decode members: %w", err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// Status returns the agent's node status.
func (c *Client) Status(ctx context.Context) (patina.NodeStatus, error) {
	var sj statusJSON
	if err := c.getJSON(ctx, "/v1/status", &sj); err != nil {
		return patina.NodeStatus{}, err
	}
	st, err := sj.status()
	if err != nil {
		return patina.NodeStatus{}, fmt.Errorf("decode status: %w", err)
	}
	return st, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode %s response: %w", path, err)
	}
	return nil
}

// do sends a request and returns the response if its status is 200; other
// statuses become a *StatusError carrying the server's message.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	base := strings.TrimRight(c.BaseURL, "/")
	if base == "" {
		return nil, errors.New("api client: no agent address (BaseURL) given")
	}
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
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
		return nil, fmt.Errorf("%s %s: %w", method, base+path, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	} else if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return nil, &StatusError{StatusCode: resp.StatusCode, Message: msg}
}
