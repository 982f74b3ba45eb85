package sqlite

import (
	"fmt"
	"strings"

	"github.com/ncruces/go-sqlite3"
)

// loadSchema reads the replicated tables registered in __patina_schema and
// their current definitions.
func (db *DB) loadSchema() (*Schema, error) {
	s := &Schema{Tables: map[string]*Table{}}
	stmt, _, err := db.w.Prepare(`SELECT name, file FROM __patina_schema ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("load schema: %w", err)
	}
	type entry struct{ name, file string }
	var entries []entry
	for stmt.Step() {
		entries = append(entries, entry{stmt.ColumnText(0), stmt.ColumnText(1)})
	}
	stmt.Close()
	for _, e := range entries {
		t, err := inspectTable(db.w, e.name)
		if err != nil {
			return nil, fmt.Errorf("load schema: %w", err)
		}
		t.File = e.file
		s.Tables[e.name] = t
	}
	return s, nil
}

// ApplySchemaFiles reads, checks and applies schema files.
func (db *DB) ApplySchemaFiles(paths []string) error {
	files, err := ReadSchemaFiles(paths)
	if err != nil {
		return err
	}
	return db.ApplySchema(files)
}

// ApplySchema diffs the schema files against the current schema and applies
// the difference in one transaction: new tables and indexes are created,
// added columns are a metadata-only ALTER TABLE (zero clock rows, zero
// changes: INCIDENTS.md #2); removed or changed columns and key changes are
// refused. Tables absent from the files are kept. Changes deferred for
// missing schema are retried afterwards.
func (db *DB) ApplySchema(files []SchemaFile) error {
	parsed, err := ParseSchema(files)
	if err != nil {
		return err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.w.Exec(`BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("apply schema: begin: %w", err)
	}
	if err := db.applySchemaTx(parsed); err != nil {
		db.w.Exec(`ROLLBACK`)
		db.resetStmts()
		return err
	}
	if err := db.w.Exec(`COMMIT`); err != nil {
		db.w.Exec(`ROLLBACK`)
		return fmt.Errorf("apply schema: commit: %w", err)
	}
	s, err := db.loadSchema()
	if err != nil {
		return err
	}
	db.schema.Store(s)
	db.resetStmts()
	if err := db.ap.reset(); err != nil {
		return fmt.Errorf("apply schema: reload on the apply connection: %w", err)
	}
	if db.deferred > 0 {
		if err := db.retryDeferred(); err != nil {
			return fmt.Errorf("apply schema: retry deferred changes: %w", err)
		}
	}
	return nil
}

// resetStmts drops cached statements (their tables may have changed shape).
func (db *DB) resetStmts() {
	for _, s := range db.stmts {
		s.Close()
	}
	db.stmts = map[string]*sqlite3.Stmt{}
	db.tstmts = map[string]*tableStmts{}
}

func (db *DB) applySchemaTx(parsed *Schema) error {
	for _, name := range parsed.TableNames() {
		nt := parsed.Tables[name]
		cur := db.schema.Load().Tables[name]
		if cur == nil {
			existing, err := db.tableExists(name)
			if err != nil {
				return err
			}
			if existing {
				// A plain table already in the file: adopt it if it matches.
				if cur, err = inspectTable(db.w, name); err != nil {
					return err
				}
			}
		}
		if cur == nil {
			if err := db.w.Exec(nt.SQL); err != nil {
				return fmt.Errorf("schema file %q: table %q: create: %w", nt.File, name, err)
			}
		} else if err := db.alterTable(cur, nt); err != nil {
			return err
		}
		for _, ddl := range nt.bookkeepingDDL() {
			if err := db.w.Exec(ddl); err != nil {
				return fmt.Errorf("schema file %q: table %q: bookkeeping: %w", nt.File, name, err)
			}
		}
		final, err := inspectTable(db.w, name)
		if err != nil {
			return err
		}
		for _, ddl := range append(final.dropTriggersDDL(), final.triggersDDL()...) {
			if err := db.w.Exec(ddl); err != nil {
				return fmt.Errorf("schema file %q: table %q: triggers: %w", nt.File, name, err)
			}
		}
		if err := db.syncIndexes(final, nt); err != nil {
			return err
		}
		if err := db.exec(`INSERT INTO __patina_schema (name, sql, file) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET sql = excluded.sql, file = excluded.file`, name, nt.SQL, nt.File); err != nil {
			return fmt.Errorf("table %q: record schema: %w", name, err)
		}
		if cur == nil || db.schema.Load().Tables[name] == nil {
			if err := db.backfill(final); err != nil {
				return err
			}
		}
	}
	return nil
}

func (db *DB) tableExists(name string) (bool, error) {
	stmt, err := db.stmt(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`)
	if err != nil {
		return false, err
	}
	defer stmt.Reset()
	stmt.BindText(1, name)
	return stmt.Step(), stmt.Err()
}

func sameColumn(a, b Column) bool {
	da, dbv := "", ""
	if a.Default != nil {
		da = "=" + *a.Default
	}
	if b.Default != nil {
		dbv = "=" + *b.Default
	}
	return strings.EqualFold(a.Type, b.Type) && a.NotNull == b.NotNull && a.PK == b.PK && da == dbv
}

const reseedHint = "patina never drops or rewrites columns online, because nodes that still have the old column could no longer merge changes with nodes that do not; to make this change, back up, edit the schema and reseed the cluster (docs/reseed.md), or add a new column instead"

// alterTable applies the non-destructive part of a table change.
func (db *DB) alterTable(cur, nt *Table) error {
	where := fmt.Sprintf("schema file %q: table %q", nt.File, nt.Name)
	if strings.Join(cur.PK, ",") != strings.Join(nt.PK, ",") {
		return fmt.Errorf("%s: primary key changed from (%s) to (%s); %s", where, strings.Join(cur.PK, ", "), strings.Join(nt.PK, ", "), reseedHint)
	}
	for _, c := range cur.Columns {
		n := nt.column(c.Name)
		if n == nil {
			return fmt.Errorf("%s: column %q was removed; %s", where, c.Name, reseedHint)
		}
		if !sameColumn(c, *n) {
			return fmt.Errorf("%s: column %q changed definition; %s", where, c.Name, reseedHint)
		}
	}
	for _, c := range nt.Columns {
		if cur.column(c.Name) != nil {
			continue
		}
		def := quoteIdent(c.Name) + " " + c.Type
		if c.NotNull {
			def += " NOT NULL"
		}
		if c.Default != nil {
			def += " DEFAULT " + *c.Default
		}
		if err := db.w.Exec(fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s", quoteIdent(nt.Name), def)); err != nil {
			return fmt.Errorf("%s: add column %q: %w", where, c.Name, err)
		}
	}
	return nil
}

// syncIndexes makes the table's indexes those of the schema files.
func (db *DB) syncIndexes(cur, nt *Table) error {
	for name, sql := range cur.Indexes {
		if nt.Indexes[name] != sql {
			if err := db.w.Exec("DROP INDEX IF EXISTS " + quoteIdent(name)); err != nil {
				return fmt.Errorf("table %q: drop index %q: %w", nt.Name, name, err)
			}
		}
	}
	for name, sql := range nt.Indexes {
		if cur.Indexes[name] != sql {
			if err := db.w.Exec(sql); err != nil {
				return fmt.Errorf("schema file %q: table %q: create index %q: %w", nt.File, nt.Name, name, err)
			}
		}
	}
	return nil
}

// backfill gives rows that existed before a table became replicated their
// clocks, as part of the next local version (like a write from outside the
// agent).
func (db *DB) backfill(t *Table) error {
	n := int64(len(t.NonPK) + 1)
	if err := db.w.Exec(fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM %s WHERE true ON CONFLICT DO NOTHING`,
		pksTable(t.Name), t.pkList(""), t.pkList(""), quoteIdent(t.Name))); err != nil {
		return fmt.Errorf("table %q: backfill keys: %w", t.Name, err)
	}
	values := []string{"('-1', 0)"}
	for i, c := range t.NonPK {
		values = append(values, fmt.Sprintf("(%s, %d)", quoteString(c), i+1))
	}
	sql := fmt.Sprintf(`INSERT INTO %s (key, cid, col_version, db_version, site, seq, ts)
SELECT k.key, v.column1, 1, c.db_version, 0, c.seq + (row_number() OVER (ORDER BY k.key) - 1) * %d + v.column2, c.ts
FROM %s k JOIN %s t ON %s, __patina_ctl c, (VALUES %s) v WHERE c.id = 0 ON CONFLICT DO NOTHING`,
		clockTable(t.Name), n, pksTable(t.Name), quoteIdent(t.Name), t.pkMatch("k.", "t."), strings.Join(values, ", "))
	if err := db.w.Exec(sql); err != nil {
		return fmt.Errorf("table %q: backfill clocks: %w", t.Name, err)
	}
	stmt, err := db.stmt(fmt.Sprintf(`SELECT count(*) FROM %s`, pksTable(t.Name)))
	if err != nil {
		return err
	}
	stmt.Step()
	rows := stmt.ColumnInt64(0)
	stmt.Reset()
	if rows > 0 {
		return db.exec(`UPDATE __patina_ctl SET seq = seq + ? WHERE id = 0`, rows*n)
	}
	return nil
}
