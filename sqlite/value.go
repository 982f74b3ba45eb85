package sqlite

import (
	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
)

// bindValue binds v to parameter i (1-based).
func bindValue(s *sqlite3.Stmt, i int, v patina.Value) error {
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

// columnValue reads column i of the current row, copying bytes.
func columnValue(s *sqlite3.Stmt, i int) patina.Value {
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
