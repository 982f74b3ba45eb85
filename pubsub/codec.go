package pubsub

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/sqlval"
)

// Cells (a row's values) and row identities are kept as compact byte
// strings: a uvarint count, then per value a type byte and its payload
// (zig-zag varint for INTEGER, 8 bytes for REAL, uvarint length and bytes for
// TEXT and BLOB). Equal rows encode to equal strings, so diffs compare
// strings.

func appendValues(b []byte, vals []patina.Value) []byte {
	b = binary.AppendUvarint(b, uint64(len(vals)))
	for _, v := range vals {
		b = append(b, byte(v.Type))
		switch v.Type {
		case patina.TypeInteger:
			b = binary.AppendVarint(b, v.Int)
		case patina.TypeReal:
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(v.Float))
		case patina.TypeText, patina.TypeBlob:
			b = binary.AppendUvarint(b, uint64(len(v.Bytes)))
			b = append(b, v.Bytes...)
		}
	}
	return b
}

func encodeValues(vals []patina.Value) string { return string(appendValues(nil, vals)) }

var errCorrupt = errors.New("corrupt encoded values")

func decodeValues(s string) ([]patina.Value, error) {
	b := []byte(s)
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errCorrupt
	}
	b = b[k:]
	out := make([]patina.Value, 0, n)
	for i := uint64(0); i < n; i++ {
		if len(b) == 0 {
			return nil, errCorrupt
		}
		t := patina.ValueType(b[0])
		b = b[1:]
		var v patina.Value
		v.Type = t
		switch t {
		case patina.TypeNull:
		case patina.TypeInteger:
			x, k := binary.Varint(b)
			if k <= 0 {
				return nil, errCorrupt
			}
			v.Int, b = x, b[k:]
		case patina.TypeReal:
			if len(b) < 8 {
				return nil, errCorrupt
			}
			v.Float, b = math.Float64frombits(binary.BigEndian.Uint64(b)), b[8:]
		case patina.TypeText, patina.TypeBlob:
			l, k := binary.Uvarint(b)
			if k <= 0 || l > uint64(len(b)-k) {
				return nil, errCorrupt
			}
			v.Bytes = append([]byte{}, b[k:k+int(l)]...)
			b = b[k+int(l):]
		default:
			return nil, errCorrupt
		}
		out = append(out, v)
	}
	if len(b) != 0 {
		return nil, errCorrupt
	}
	return out, nil
}

// mustDecode decodes values this package encoded itself.
func mustDecode(s string) []patina.Value {
	vals, err := decodeValues(s)
	if err != nil {
		panic(fmt.Sprintf("pubsub: %v (a bug)", err))
	}
	return vals
}

// Packed primary keys (patina.Change.PK) use cr-sqlite's column packing: a
// count byte, then per column a type byte (nbytes<<3 | type) and the payload.
func bindValue(s *sqlite3.Stmt, i int, v patina.Value) error { return sqlval.Bind(s, i, v) }

func columnValue(s *sqlite3.Stmt, i int) patina.Value { return sqlval.Column(s, i) }

// appendColumns appends the encoding of columns [from, to) of the current
// row without building patina.Values.
func appendColumns(b []byte, s *sqlite3.Stmt, from, to int) []byte {
	b = binary.AppendUvarint(b, uint64(to-from))
	for i := from; i < to; i++ {
		switch s.ColumnType(i) {
		case sqlite3.INTEGER:
			b = append(b, byte(patina.TypeInteger))
			b = binary.AppendVarint(b, s.ColumnInt64(i))
		case sqlite3.FLOAT:
			b = append(b, byte(patina.TypeReal))
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(s.ColumnFloat(i)))
		case sqlite3.TEXT:
			raw := s.ColumnRawText(i)
			b = append(b, byte(patina.TypeText))
			b = binary.AppendUvarint(b, uint64(len(raw)))
			b = append(b, raw...)
		case sqlite3.BLOB:
			raw := s.ColumnRawBlob(i)
			b = append(b, byte(patina.TypeBlob))
			b = binary.AppendUvarint(b, uint64(len(raw)))
			b = append(b, raw...)
		default:
			b = append(b, byte(patina.TypeNull))
		}
	}
	return b
}

// bindStatement binds a statement's positional and named parameters, with
// the same name rules as the store's queries.
func bindStatement(s *sqlite3.Stmt, st patina.Statement) error {
	if n := s.BindCount(); len(st.Params) > n {
		return patina.Errorf(patina.EINVALID, "statement has %d parameters but %d values were given", n, len(st.Params))
	}
	for i, v := range st.Params {
		if err := v.Validate(); err != nil {
			return err
		}
		if err := bindValue(s, i+1, v); err != nil {
			return patina.Errorf(patina.EINVALID, "parameter %d: %v", i+1, err)
		}
	}
	for name, v := range st.Named {
		idx := paramIndex(s, name)
		if idx == 0 {
			return patina.Errorf(patina.EINVALID, "statement has no parameter named %q", name)
		}
		if err := v.Validate(); err != nil {
			return err
		}
		if err := bindValue(s, idx, v); err != nil {
			return patina.Errorf(patina.EINVALID, "parameter %q: %v", name, err)
		}
	}
	return nil
}

func paramIndex(s *sqlite3.Stmt, name string) int {
	for _, cand := range []string{name, ":" + name, "$" + name, "@" + name} {
		if idx := s.BindIndex(cand); idx > 0 {
			return idx
		}
	}
	return 0
}

// namedValue finds the value of a named parameter token (":a") in named,
// whose keys may carry the prefix or not.
func namedValue(named map[string]patina.Value, tok string) (patina.Value, bool) {
	if v, ok := named[tok]; ok {
		return v, true
	}
	v, ok := named[tok[1:]]
	return v, ok
}
