// Package sqlval converts between patina.Value and the SQLite driver's
// parameters and columns, for the packages that talk to SQLite directly
// (sqlite, pubsub).
package sqlval

import (
	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
)

// Bind binds v to parameter i (1-based). An empty BLOB stays a BLOB, not
// NULL.
func Bind(s *sqlite3.Stmt, i int, v patina.Value) error {
	switch v.Type {
	case patina.TypeInteger:
		return s.BindInt64(i, v.Int)
	case patina.TypeReal:
		return s.BindFloat(i, v.Float)
	case patina.TypeText:
		return s.BindText(i, string(v.Bytes))
	case patina.TypeBlob:
		if len(v.Bytes) == 0 {
			return s.BindZeroBlob(i, 0)
		}
		return s.BindBlob(i, v.Bytes)
	default:
		return s.BindNull(i)
	}
}

// Column reads column i of the current row, copying bytes.
func Column(s *sqlite3.Stmt, i int) patina.Value {
	switch s.ColumnType(i) {
	case sqlite3.INTEGER:
		return patina.Int(s.ColumnInt64(i))
	case sqlite3.FLOAT:
		return patina.Real(s.ColumnFloat(i))
	case sqlite3.TEXT:
		return patina.Value{Type: patina.TypeText, Bytes: append([]byte{}, s.ColumnRawText(i)...)}
	case sqlite3.BLOB:
		return patina.Value{Type: patina.TypeBlob, Bytes: append([]byte{}, s.ColumnRawBlob(i)...)}
	default:
		return patina.Null()
	}
}
