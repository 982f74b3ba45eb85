package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/patinadb/patina"
)

// DecodeStatements parses a request body holding a JSON array of statements,
// each in one of Corrosion's forms (see DecodeStatement). Errors are
// *patina.Error with code EINVALID and name the statement at fault.
func DecodeStatements(data []byte) ([]patina.Statement, error) {
	if firstByte(data) == 0 {
		return nil, patina.Errorf(patina.EINVALID, `the body is empty; send a JSON array of statements, e.g. ["INSERT INTO t VALUES (1)"]`)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		if firstByte(data) != '[' && json.Valid(data) {
			return nil, patina.Errorf(patina.EINVALID, `the body must be a JSON array of statements, e.g. ["INSERT INTO t VALUES (1)", ["INSERT INTO t VALUES (?)", [2]]]`)
		}
		return nil, patina.Errorf(patina.EINVALID, "the body is not valid JSON: %s", jsonErrorText(err))
	}
	if raws == nil {
		return nil, patina.Errorf(patina.EINVALID, `the body must be a JSON array of statements, not null`)
	}
	if len(raws) == 0 {
		return nil, patina.Errorf(patina.EINVALID, "the transaction holds no statements; send a JSON array with at least one")
	}
	stmts := make([]patina.Statement, len(raws))
	for i, raw := range raws {
		st, err := decodeStatement(raw)
		if err != nil {
			return nil, patina.Errorf(patina.EINVALID, "statement %d: %s", i+1, err)
		}
		stmts[i] = st
	}
	return stmts, nil
}

// DecodeStatement parses one statement in any of Corrosion's forms:
//
//	"SELECT 1"
//	["SELECT ?", [1]]
//	["SELECT :a", {":a": 1}]
//	{"query": "SELECT ?", "params": [1], "named_params": {":a": 1}}
//
// Parameters decode as Corrosion's do: null is NULL, true and false are
// INTEGER 1 and 0, a JSON integer that fits int64 is INTEGER, any other
// number is REAL, a string is TEXT, an array of integers 0 to 255 is a BLOB,
// and any other array or object is TEXT holding its compact JSON. Errors are
// *patina.Error with code EINVALID.
func DecodeStatement(data []byte) (patina.Statement, error) {
	if firstByte(data) == 0 {
		return patina.Statement{}, patina.Errorf(patina.EINVALID, `the body is empty; send one statement, e.g. "SELECT 1" or ["SELECT ?", [1]]`)
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return patina.Statement{}, patina.Errorf(patina.EINVALID, "the body is not valid JSON: %s", jsonErrorText(err))
	}
	st, err := decodeStatement(data)
	if err != nil {
		return patina.Statement{}, patina.Errorf(patina.EINVALID, "statement: %s", err)
	}
	return st, nil
}

const statementForms = `"SQL", ["SQL", [params]], ["SQL", {":name": value}] or {"query": "SQL", "params": [...], "named_params": {...}}`

// decodeStatement parses one statement from valid JSON.
func decodeStatement(raw []byte) (patina.Statement, error) {
	var st patina.Statement
	switch firstByte(raw) {
	case '"':
		if err := json.Unmarshal(raw, &st.SQL); err != nil {
			return st, err
		}
	case '[':
		var parts []json.RawMessage
		if err := json.Unmarshal(raw, &parts); err != nil {
			return st, err
		}
		if len(parts) == 0 || len(parts) > 2 || firstByte(parts[0]) != '"' {
			return st, fmt.Errorf("an array statement is [\"SQL\", [params]] or [\"SQL\", {\":name\": value}], got %d elements; a statement is %s", len(parts), statementForms)
		}
		if err := json.Unmarshal(parts[0], &st.SQL); err != nil {
			return st, err
		}
		if len(parts) == 2 {
			var err error
			switch firstByte(parts[1]) {
			case '[':
				st.Params, err = decodeParams(parts[1])
			case '{':
				st.Named, err = decodeNamed(parts[1])
			case 'n':
			default:
				err = fmt.Errorf("the second element must be an array of parameters or an object of named parameters, got %s", shortJSON(parts[1]))
			}
			if err != nil {
				return st, err
			}
		}
	case '{':
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return st, err
		}
		q, ok := fields["query"]
		if !ok || firstByte(q) != '"' {
			return st, fmt.Errorf(`a statement object needs "query" holding the SQL as a string`)
		}
		if err := json.Unmarshal(q, &st.SQL); err != nil {
			return st, err
		}
		for key, val := range fields {
			var err error
			switch key {
			case "query":
			case "params":
				if firstByte(val) == 'n' {
					continue
				}
				if firstByte(val) != '[' {
					return st, fmt.Errorf(`"params" must be an array, got %s`, shortJSON(val))
				}
				st.Params, err = decodeParams(val)
			case "named_params":
				if firstByte(val) == 'n' {
					continue
				}
				if firstByte(val) != '{' {
					return st, fmt.Errorf(`"named_params" must be an object, got %s`, shortJSON(val))
				}
				st.Named, err = decodeNamed(val)
			default:
				return st, fmt.Errorf(`unknown key %q; a statement object has "query", "params" and "named_params"`, key)
			}
			if err != nil {
				return st, err
			}
		}
	default:
		return st, fmt.Errorf("got %s; a statement is %s", shortJSON(raw), statementForms)
	}
	if len(st.Params) > 0 && len(st.Named) > 0 {
		return st, errors.New(`give either positional "params" or "named_params", not both`)
	}
	return st, nil
}

func decodeParams(raw []byte) ([]patina.Value, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, err
	}
	vals := make([]patina.Value, len(raws))
	for i, r := range raws {
		v, err := DecodeValue(r)
		if err != nil {
			return nil, fmt.Errorf("parameter %d: %w", i+1, err)
		}
		vals[i] = v
	}
	return vals, nil
}

func decodeNamed(raw []byte) (map[string]patina.Value, error) {
	var raws map[string]json.RawMessage
	if err := json.Unmarshal(raw, &raws); err != nil {
		return nil, err
	}
	named := make(map[string]patina.Value, len(raws))
	for name, r := range raws {
		if name == "" || (name[0] != ':' && name[0] != '@' && name[0] != '$') {
			return nil, fmt.Errorf("named parameter %q needs its SQLite prefix, e.g. %q", name, ":"+name)
		}
		v, err := DecodeValue(r)
		if err != nil {
			return nil, fmt.Errorf("parameter %q: %w", name, err)
		}
		named[name] = v
	}
	return named, nil
}

// DecodeValue converts one JSON parameter to a SQLite value by Corrosion's
// rules (see DecodeStatement). data must be valid JSON.
func DecodeValue(data []byte) (patina.Value, error) {
	data = bytes.TrimSpace(data)
	switch firstByte(data) {
	case 'n':
		return patina.Null(), nil
	case 't':
		return patina.Int(1), nil
	case 'f':
		return patina.Int(0), nil
	case '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return patina.Value{}, err
		}
		return patina.Text(s), nil
	case '[':
		if b, ok := parseByteArray(data); ok {
			return patina.Blob(b), nil
		}
		return compactText(data)
	case '{':
		return compactText(data)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		s := string(data)
		if bytes.IndexAny(data, ".eE") < 0 {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return patina.Int(i), nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if math.IsInf(f, 0) {
			return patina.Value{}, fmt.Errorf("number %s is out of range for a 64-bit float; send it as a string", shorten(s))
		} else if err != nil {
			var ne *strconv.NumError
			if !errors.As(err, &ne) || ne.Err != strconv.ErrRange {
				return patina.Value{}, fmt.Errorf("number %s: %v", shorten(s), err)
			}
		}
		return patina.Real(f), nil
	}
	return patina.Value{}, fmt.Errorf("not a JSON value: %s", shortJSON(data))
}

func compactText(data []byte) (patina.Value, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, data); err != nil {
		return patina.Value{}, err
	}
	return patina.Text(buf.String()), nil
}

// parseByteArray reads a JSON array of integers 0..255. It reports false for
// any other JSON; data must be valid JSON.
func parseByteArray(data []byte) ([]byte, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, false
	}
	i = skipSpace(data, i+1)
	out := make([]byte, 0, len(data)/2)
	if i < len(data) && data[i] == ']' {
		return out, skipSpace(data, i+1) == len(data)
	}
	for {
		i = skipSpace(data, i)
		start, n := i, 0
		for i < len(data) && data[i] >= '0' && data[i] <= '9' {
			n = n*10 + int(data[i]-'0')
			if n > 255 {
				return nil, false
			}
			i++
		}
		if i == start {
			return nil, false
		}
		out = append(out, byte(n))
		i = skipSpace(data, i)
		if i >= len(data) {
			return nil, false
		}
		switch data[i] {
		case ',':
			i++
		case ']':
			return out, skipSpace(data, i+1) == len(data)
		default:
			return nil, false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

func firstByte(data []byte) byte {
	if i := skipSpace(data, 0); i < len(data) {
		return data[i]
	}
	return 0
}

// MarshalStatement encodes st in Corrosion's object form,
// {"query": ..., "params": [...], "named_params": {...}}, with BLOB values as
// arrays of bytes. It fails on values JSON cannot carry (NaN, infinities).
func MarshalStatement(st patina.Statement) ([]byte, error) {
	return appendStatement(nil, st)
}

func appendStatement(b []byte, st patina.Statement) ([]byte, error) {
	b = append(b, `{"query":`...)
	b = appendString(b, st.SQL)
	if len(st.Params) > 0 {
		b = append(b, `,"params":[`...)
		for i, v := range st.Params {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendParam(b, v); err != nil {
				return nil, fmt.Errorf("encode parameter %d of %q: %w", i+1, shorten(st.SQL), err)
			}
		}
		b = append(b, ']')
	}
	if len(st.Named) > 0 {
		names := make([]string, 0, len(st.Named))
		for name := range st.Named {
			names = append(names, name)
		}
		sort.Strings(names)
		b = append(b, `,"named_params":{`...)
		for i, name := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, name)
			b = append(b, ':')
			var err error
			if b, err = appendParam(b, st.Named[name]); err != nil {
				return nil, fmt.Errorf("encode parameter %q of %q: %w", name, shorten(st.SQL), err)
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

func appendParam(b []byte, v patina.Value) ([]byte, error) {
	if v.Type == patina.TypeReal && (math.IsNaN(v.Float) || math.IsInf(v.Float, 0)) {
		return nil, patina.Errorf(patina.EINVALID, "REAL %v cannot be sent as JSON; send NULL or a finite number", v.Float)
	}
	if v.Type > patina.TypeBlob {
		return nil, patina.Errorf(patina.EINVALID, "unknown value type %d", v.Type)
	}
	return AppendValue(b, v), nil
}

// AppendValue appends the JSON of a result cell: NULL is null, INTEGER an
// exact integer, REAL a number that always reads back as REAL (1.0, not 1;
// non-finite values become null, as in Corrosion), TEXT a string and BLOB an
// array of byte numbers.
func AppendValue(b []byte, v patina.Value) []byte {
	switch v.Type {
	case patina.TypeInteger:
		return strconv.AppendInt(b, v.Int, 10)
	case patina.TypeReal:
		return appendFloat(b, v.Float)
	case patina.TypeText:
		return appendString(b, string(v.Bytes))
	case patina.TypeBlob:
		b = append(b, '[')
		for i, c := range v.Bytes {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(c), 10)
		}
		return append(b, ']')
	}
	return append(b, "null"...)
}

func appendFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	start := len(b)
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if bytes.IndexAny(b[start:], ".e") < 0 {
		b = append(b, ".0"...)
	}
	return b
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func shortJSON(raw []byte) string { return shorten(string(bytes.TrimSpace(raw))) }

func shorten(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// jsonErrorText makes encoding/json's errors read without Go type names.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("unexpected %s at byte %d", te.Value, te.Offset)
	case err == nil:
		return "unknown error"
	}
	return err.Error()
}
