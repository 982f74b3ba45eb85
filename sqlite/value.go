package sqlite

import (
	"github.com/ncruces/go-sqlite3"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/internal/sqlval"
)

func bindValue(s *sqlite3.Stmt, i int, v patina.Value) error { return sqlval.Bind(s, i, v) }

func columnValue(s *sqlite3.Stmt, i int) patina.Value { return sqlval.Column(s, i) }
