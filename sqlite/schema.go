package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// Column is one column of a replicated table.
type Column struct {
	Name    string
	Type    string
	NotNull bool
	Default *string // the DEFAULT expression as written, nil if none
	PK      int     // 1-based position in the primary key, 0 if not a key column
}

// Table is a replicated table as the schema files declare it.
type Table struct {
	Name    string
	SQL     string
	File    string
	Columns []Column // in table order, generated columns excluded
	PK      []string // key columns in key order
	NonPK   []string // the other columns, in table order
	Indexes map[string]string

	nonPKIdx map[string]int // NonPK name -> index
	sqlCells string         // see cellsSQL
	sqlRows  string         // see rowsSQL
}

func (t *Table) column(name string) *Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

// Schema is the set of replicated tables.
type Schema struct {
	Tables map[string]*Table
}

// TableNames returns the table names sorted.
func (s *Schema) TableNames() []string {
	names := make([]string, 0, len(s.Tables))
	for n := range s.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SchemaFile is one schema source: a file name (for error messages) and SQL.
type SchemaFile struct {
	Name string
	SQL  string
}

// ReadSchemaFiles reads *.sql files; a directory contributes its *.sql files
// in name order.
func ReadSchemaFiles(paths []string) ([]SchemaFile, error) {
	var files []SchemaFile
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("read schema path %q: %w (check [db] schema_paths)", p, err)
		}
		names := []string{p}
		if fi.IsDir() {
			names, err = filepath.Glob(filepath.Join(p, "*.sql"))
			if err != nil {
				return nil, fmt.Errorf("list schema dir %q: %w", p, err)
			}
			sort.Strings(names)
		}
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				return nil, fmt.Errorf("read schema file %q: %w", n, err)
			}
			files = append(files, SchemaFile{Name: n, SQL: string(b)})
		}
	}
	return files, nil
}

// ParseSchema checks schema files by letting SQLite parse them into a scratch
// in-memory database, then enforces patina's rules (DESIGN.md §1) on what
// SQLite built. Every refusal names the file, the table, the column and the
// rule.
func ParseSchema(files []SchemaFile) (*Schema, error) {
	conn, err := sqlite3.Open(":memory:")
	if err != nil {
		return nil, fmt.Errorf("open scratch schema db: %w", err)
	}
	defer conn.Close()
	tableFile := map[string]string{}
	for _, f := range files {
		rest := f.SQL
		for {
			stmt, tail, err := conn.Prepare(rest)
			if err != nil {
				// A statement of a refused kind may fail to prepare (ALTER
				// TABLE of a table the scratch database lacks): name the rule.
				head, _, _ := strings.Cut(stripLeadingComments(rest), ";")
				if kerr := checkStatementKind(head); kerr != nil {
					return nil, fmt.Errorf("schema file %q: %w", f.Name, kerr)
				}
				return nil, fmt.Errorf("schema file %q: %v", f.Name, err)
			}
			if stmt == nil {
				break
			}
			text := stmt.SQL()
			if err := checkStatementKind(text); err != nil {
				stmt.Close()
				return nil, fmt.Errorf("schema file %q: %w", f.Name, err)
			}
			before, _ := scratchTables(conn)
			err = stmt.Exec()
			stmt.Close()
			if err != nil {
				return nil, fmt.Errorf("schema file %q: statement %q: %v", f.Name, shorten(text), err)
			}
			after, err := scratchTables(conn)
			if err != nil {
				return nil, err
			}
			for _, t := range after {
				if !contains(before, t) {
					tableFile[t] = f.Name
				}
			}
			rest = tail
		}
	}
	names, err := scratchTables(conn)
	if err != nil {
		return nil, err
	}
	s := &Schema{Tables: map[string]*Table{}}
	for _, name := range names {
		t, err := inspectTable(conn, name)
		if err != nil {
			return nil, err
		}
		t.File = tableFile[name]
		if err := checkTable(conn, t); err != nil {
			return nil, fmt.Errorf("schema file %q: %w", t.File, err)
		}
		s.Tables[name] = t
	}
	return s, nil
}

func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// stripLeadingComments removes whitespace and SQL comments before the first
// token.
func stripLeadingComments(s string) string {
	for {
		s = strings.TrimSpace(s)
		switch {
		case strings.HasPrefix(s, "--"):
			if i := strings.IndexByte(s, '\n'); i >= 0 {
				s = s[i+1:]
			} else {
				return ""
			}
		case strings.HasPrefix(s, "/*"):
			if i := strings.Index(s, "*/"); i >= 0 {
				s = s[i+2:]
			} else {
				return ""
			}
		default:
			return s
		}
	}
}

func checkStatementKind(sql string) error {
	words := strings.Fields(strings.ToUpper(stripLeadingComments(sql)))
	first := func(n int) string {
		if len(words) < n {
			return strings.Join(words, " ")
		}
		return strings.Join(words[:n], " ")
	}
	switch {
	case first(2) == "CREATE TABLE":
		if m := createTableAs.FindStringSubmatch(stripLeadingComments(sql)); m != nil {
			return fmt.Errorf("table %s: statement %q: CREATE TABLE ... AS SELECT is not allowed (rule: replicated tables declare their columns and a primary key); declare the columns and copy rows with INSERT ... SELECT", m[1], shorten(sql))
		}
		return nil
	case first(2) == "CREATE INDEX", first(3) == "CREATE UNIQUE INDEX":
		// UNIQUE indexes are refused by checkTable, which can name the
		// table and the columns.
		return nil
	case first(4) == "DROP INDEX IF EXISTS":
		return nil
	}
	kind := first(2)
	if len(words) >= 3 && (words[1] == "TEMP" || words[1] == "TEMPORARY" || words[1] == "UNIQUE" || words[1] == "VIRTUAL") {
		kind = first(3)
	}
	return fmt.Errorf("statement %q: %s is not allowed (rule: schema files hold only CREATE TABLE, CREATE INDEX and DROP INDEX IF EXISTS, because views, triggers and data changes are not replicated)", shorten(sql), kind)
}

// createTableAs matches the head of CREATE TABLE [IF NOT EXISTS] name AS.
var createTableAs = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(` + sqlName + `(?:\s*\.\s*` + sqlName + `)?)\s*AS\b`)

// sqlName matches a table name: bare or quoted (double quotes, brackets or
// backticks).
const sqlName = `(?:"(?:[^"]|"")*"|\[[^\]]*\]|` + "`[^`]*`" + `|[^\s("\[` + "`" + `.]+)`

func scratchTables(conn *sqlite3.Conn) ([]string, error) {
	stmt, _, err := conn.Prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer stmt.Close()
	var names []string
	for stmt.Step() {
		names = append(names, stmt.ColumnText(0))
	}
	return names, stmt.Err()
}

// inspectTable reads a table's definition through PRAGMAs.
func inspectTable(conn *sqlite3.Conn, name string) (*Table, error) {
	t := &Table{Name: name, Indexes: map[string]string{}}
	stmt, _, err := conn.Prepare(`SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?`)
	if err != nil {
		return nil, err
	}
	stmt.BindText(1, name)
	if stmt.Step() {
		t.SQL = stmt.ColumnText(0)
	}
	stmt.Close()

	stmt, _, err = conn.Prepare(`SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?)`)
	if err != nil {
		return nil, fmt.Errorf("inspect table %q: %w", name, err)
	}
	stmt.BindText(1, name)
	pks := map[int]string{}
	for stmt.Step() {
		if stmt.ColumnInt(5) != 0 { // generated or hidden column: not replicated
			continue
		}
		c := Column{Name: stmt.ColumnText(0), Type: stmt.ColumnText(1), NotNull: stmt.ColumnInt(2) != 0, PK: stmt.ColumnInt(4)}
		if stmt.ColumnType(3) != sqlite3.NULL {
			d := stmt.ColumnText(3)
			c.Default = &d
		}
		t.Columns = append(t.Columns, c)
		if c.PK > 0 {
			pks[c.PK] = c.Name
		} else {
			t.NonPK = append(t.NonPK, c.Name)
		}
	}
	if err := stmt.Close(); err != nil {
		return nil, fmt.Errorf("inspect table %q: %w", name, err)
	}
	for i := 1; i <= len(pks); i++ {
		t.PK = append(t.PK, pks[i])
	}
	t.nonPKIdx = make(map[string]int, len(t.NonPK))
	for i, c := range t.NonPK {
		t.nonPKIdx[c] = i
	}
	t.sqlCells, t.sqlRows = t.cellsSQL(), t.rowsSQL()

	stmt, _, err = conn.Prepare(`SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	stmt.BindText(1, name)
	for stmt.Step() {
		t.Indexes[stmt.ColumnText(0)] = stmt.ColumnText(1)
	}
	return t, stmt.Close()
}

// checkTable enforces DESIGN.md §1 on one table.
func checkTable(conn *sqlite3.Conn, t *Table) error {
	if strings.HasPrefix(t.Name, "__patina") || strings.Contains(t.Name, "__patina_") {
		return fmt.Errorf("table %q: names containing __patina are reserved for patina's bookkeeping; rename the table", t.Name)
	}
	if len(t.PK) == 0 {
		return fmt.Errorf("table %q: no PRIMARY KEY (rule: every replicated table needs a non-null primary key so rows can be named across nodes); add e.g. \"id TEXT NOT NULL PRIMARY KEY\"", t.Name)
	}
	withoutRowID := isWithoutRowID(conn, t.Name)
	for _, c := range t.Columns {
		switch {
		case c.PK > 0 && !c.NotNull:
			if !withoutRowID && len(t.PK) == 1 && strings.EqualFold(c.Type, "INTEGER") {
				continue // INTEGER PRIMARY KEY is the rowid: never NULL
			}
			return fmt.Errorf("table %q: column %q: primary key column is nullable (rule: primary keys must be NOT NULL); declare it %q", t.Name, c.Name, c.Name+" "+c.Type+" NOT NULL")
		case c.PK == 0 && c.NotNull && c.Default == nil:
			return fmt.Errorf("table %q: column %q: NOT NULL without DEFAULT (rule: non-key NOT NULL columns need a DEFAULT, because a change may create a row from one column); add e.g. DEFAULT ''", t.Name, c.Name)
		}
		if c.PK > 0 {
			if _, coll, _, _, _, err := conn.TableColumnMetadata("main", t.Name, c.Name); err == nil && !strings.EqualFold(coll, "BINARY") {
				return fmt.Errorf("table %q: column %q: primary key column uses COLLATE %s (rule: primary key columns compare bytewise, because keys that are equal on one node and different on another could not merge); drop the COLLATE clause from the key column", t.Name, c.Name, coll)
			}
		}
	}
	stmt, _, err := conn.Prepare(`SELECT "table", "from" FROM pragma_foreign_key_list(?)`)
	if err != nil {
		return err
	}
	stmt.BindText(1, t.Name)
	if stmt.Step() {
		ref, col := stmt.ColumnText(0), stmt.ColumnText(1)
		stmt.Close()
		return fmt.Errorf("table %q: column %q: REFERENCES %q (rule: no foreign keys, because replicas apply rows in any order); drop the constraint and keep the column", t.Name, col, ref)
	}
	stmt.Close()
	stmt, _, err = conn.Prepare(`SELECT il.name, il.origin, (SELECT group_concat(name, ', ') FROM pragma_index_info(il.name)) FROM pragma_index_list(?) il WHERE il."unique" = 1 AND il.origin != 'pk' ORDER BY il.name`)
	if err != nil {
		return err
	}
	stmt.BindText(1, t.Name)
	if stmt.Step() {
		name, origin, cols := stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnText(2)
		stmt.Close()
		const rule = "(rule: no UNIQUE indexes besides the primary key, because two nodes can write the same value concurrently and the merge could not keep both)"
		if origin == "c" {
			return fmt.Errorf("table %q: column %q: UNIQUE index %q %s; make it a plain CREATE INDEX", t.Name, cols, name, rule)
		}
		return fmt.Errorf("table %q: column %q: UNIQUE constraint %s; drop UNIQUE and add a plain index if lookups need one", t.Name, cols, rule)
	}
	stmt.Close()
	return nil
}

// isWithoutRowID reports whether table name is a WITHOUT ROWID table: it has
// no rowid (unless a column of that name hides it).
func isWithoutRowID(conn *sqlite3.Conn, name string) bool {
	stmt, _, err := conn.Prepare(`SELECT rowid FROM ` + quoteIdent(name))
	if err != nil {
		return true
	}
	stmt.Close()
	return false
}
