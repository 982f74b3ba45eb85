package sqlite

import (
	"fmt"
	"strings"
)

// Bookkeeping DDL. Every replicated table T gets:
//
//	T__patina_pks    key INTEGER PRIMARY KEY + the key columns (unique): a small
//	                 integer per primary key, kept after deletes (tombstones)
//	T__patina_clock  (key, cid) -> col_version, db_version, site, seq, ts; cid
//	                 is a column name or "-1", the sentinel whose col_version is
//	                 the row's causal length
//
// and pure-SQL triggers, so a write from any SQLite client (the sqlite3
// shell while the agent is down, say) is captured too. The triggers read the
// transaction's version, next seq and HLC timestamp from __patina_ctl. Remote
// changes are merged on a connection with triggers disabled, so the triggers
// need no flag to tell them apart.

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func pksTable(t string) string   { return quoteIdent(t + "__patina_pks") }
func clockTable(t string) string { return quoteIdent(t + "__patina_clock") }

func (t *Table) pkList(prefix string) string {
	parts := make([]string, len(t.PK))
	for i, c := range t.PK {
		parts[i] = prefix + quoteIdent(c)
	}
	return strings.Join(parts, ", ")
}

// pkMatch renders "k.a = NEW.a AND k.b = NEW.b".
func (t *Table) pkMatch(left, right string) string {
	parts := make([]string, len(t.PK))
	for i, c := range t.PK {
		parts[i] = left + quoteIdent(c) + " = " + right + quoteIdent(c)
	}
	return strings.Join(parts, " AND ")
}

// bookkeepingDDL creates the pk and clock tables of t.
//
// The key columns of the pk table carry the declared types of the table's
// key columns, so a key value gets the same affinity in both tables: an
// INTEGER key sent as TEXT '5' must name the same row, not a second one.
func (t *Table) bookkeepingDDL() []string {
	cols := make([]string, len(t.PK))
	defs := make([]string, len(t.PK))
	for i, c := range t.PK {
		cols[i] = quoteIdent(c)
		defs[i] = cols[i]
		if col := t.column(c); col != nil && col.Type != "" {
			defs[i] += " " + col.Type
		}
	}
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (key INTEGER PRIMARY KEY, %s, UNIQUE (%s))`,
			pksTable(t.Name), strings.Join(defs, ", "), strings.Join(cols, ", ")),
		// No NOT NULL on the clock columns (nothing writes NULL there): the
		// remote apply writes clocks with multi-row INSERT OR REPLACE, and
		// with no constraint that could abort it halfway SQLite needs no
		// statement journal for it.
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (key INTEGER NOT NULL, cid TEXT NOT NULL, col_version INTEGER, db_version INTEGER, site INTEGER, seq INTEGER, ts INTEGER, PRIMARY KEY (key, cid)) WITHOUT ROWID`,
			clockTable(t.Name)),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s (site, db_version)`,
			quoteIdent(t.Name+"__patina_clock_sitedbv"), clockTable(t.Name)),
	}
}

// triggerNames lists the capture triggers of t.
func (t *Table) triggerNames() []string {
	return []string{t.Name + "__patina_ins", t.Name + "__patina_upd", t.Name + "__patina_updpk", t.Name + "__patina_del"}
}

// dropTriggersDDL drops the capture triggers (before re-creating them after
// ALTER TABLE ADD COLUMN).
func (t *Table) dropTriggersDDL() []string {
	var out []string
	for _, n := range t.triggerNames() {
		out = append(out, "DROP TRIGGER IF EXISTS "+quoteIdent(n))
	}
	return out
}

// insertBody captures the insert of row `ref` (NEW): the pk key, the
// sentinel (1 for a new row, next odd after a delete, unchanged for INSERT OR
// REPLACE of a live row) and one clock per column, then advances the seq.
func (t *Table) insertBody(ref string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT DO NOTHING;\n", pksTable(t.Name), t.pkList(""), t.pkList(ref+"."))
	values := []string{"('-1', 0)"}
	for i, c := range t.NonPK {
		values = append(values, fmt.Sprintf("(%s, %d)", quoteString(c), i+1))
	}
	fmt.Fprintf(&b, `INSERT INTO %s (key, cid, col_version, db_version, site, seq, ts)
  SELECT k.key, v.column1, 1, c.db_version, 0, c.seq + v.column2, c.ts
  FROM %s k, __patina_ctl c, (VALUES %s) v
  WHERE c.id = 0 AND %s
  ON CONFLICT (key, cid) DO UPDATE SET
    col_version = CASE WHEN excluded.cid != '-1' THEN col_version + 1 WHEN col_version %% 2 = 0 THEN col_version + 1 ELSE col_version END,
    db_version = excluded.db_version, site = 0, seq = excluded.seq, ts = excluded.ts
  WHERE excluded.cid != '-1' OR col_version %% 2 = 0;
`, clockTable(t.Name), pksTable(t.Name), strings.Join(values, ", "), t.pkMatch("k.", ref+"."))
	fmt.Fprintf(&b, "UPDATE __patina_ctl SET seq = seq + %d WHERE id = 0;\n", len(t.NonPK)+1)
	return b.String()
}

// deleteBody captures the delete of row `ref` (OLD): the sentinel moves to the
// next even causal length and the column clocks go.
func (t *Table) deleteBody(ref string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT DO NOTHING;\n", pksTable(t.Name), t.pkList(""), t.pkList(ref+"."))
	fmt.Fprintf(&b, `INSERT INTO %s (key, cid, col_version, db_version, site, seq, ts)
  SELECT k.key, '-1', 2, c.db_version, 0, c.seq, c.ts FROM %s k, __patina_ctl c
  WHERE c.id = 0 AND %s
  ON CONFLICT (key, cid) DO UPDATE SET
    col_version = col_version + 1 + (col_version %% 2 = 0),
    db_version = excluded.db_version, site = 0, seq = excluded.seq, ts = excluded.ts;
`, clockTable(t.Name), pksTable(t.Name), t.pkMatch("k.", ref+"."))
	fmt.Fprintf(&b, "DELETE FROM %s WHERE key = (SELECT key FROM %s k WHERE %s) AND cid != '-1';\n",
		clockTable(t.Name), pksTable(t.Name), t.pkMatch("k.", ref+"."))
	b.WriteString("UPDATE __patina_ctl SET seq = seq + 1 WHERE id = 0;\n")
	return b.String()
}

// changed renders "column c differs between OLD and NEW" as the bytes a
// change would carry: bytewise (a NOCASE column still changes from 'a' to
// 'A') and by storage class (1 and 1.0 compare equal but are different
// values). SQLite offers no core function telling 0.0 from -0.0, so an
// UPDATE from one to the other is not captured; an INSERT keeps the sign.
func changed(c string) string {
	n, o := "NEW."+quoteIdent(c), "OLD."+quoteIdent(c)
	return "(" + n + " IS NOT " + o + " COLLATE BINARY OR typeof(" + n + ") != typeof(" + o + "))"
}

func (t *Table) pkChanged() string {
	parts := make([]string, len(t.PK))
	for i, c := range t.PK {
		parts[i] = changed(c)
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// triggersDDL creates the capture triggers of t.
func (t *Table) triggersDDL() []string {
	name := t.triggerNames()
	out := []string{
		fmt.Sprintf("CREATE TRIGGER IF NOT EXISTS %s AFTER INSERT ON %s BEGIN\n%sEND",
			quoteIdent(name[0]), quoteIdent(t.Name), t.insertBody("NEW")),
		fmt.Sprintf("CREATE TRIGGER IF NOT EXISTS %s AFTER UPDATE ON %s WHEN %s BEGIN\n%s%sEND",
			quoteIdent(name[2]), quoteIdent(t.Name), t.pkChanged(), t.deleteBody("OLD"), t.insertBody("NEW")),
		fmt.Sprintf("CREATE TRIGGER IF NOT EXISTS %s AFTER DELETE ON %s BEGIN\n%sEND",
			quoteIdent(name[3]), quoteIdent(t.Name), t.deleteBody("OLD")),
	}
	if len(t.NonPK) > 0 {
		diff := make([]string, len(t.NonPK))
		values := make([]string, len(t.NonPK))
		for i, c := range t.NonPK {
			diff[i] = changed(c)
			values[i] = fmt.Sprintf("SELECT %s, %d WHERE %s", quoteString(c), i+1, diff[i])
		}
		body := fmt.Sprintf(`INSERT INTO %s (key, cid, col_version, db_version, site, seq, ts)
  SELECT k.key, v.cid, 1, c.db_version, 0, c.seq + v.i, c.ts
  FROM %s k, __patina_ctl c, (SELECT NULL AS cid, NULL AS i WHERE 0 UNION ALL %s) v
  WHERE c.id = 0 AND %s
  ON CONFLICT (key, cid) DO UPDATE SET col_version = col_version + 1,
    db_version = excluded.db_version, site = 0, seq = excluded.seq, ts = excluded.ts;
UPDATE __patina_ctl SET seq = seq + %d WHERE id = 0;
`, clockTable(t.Name), pksTable(t.Name), strings.Join(values, " UNION ALL "), t.pkMatch("k.", "NEW."), len(t.NonPK)+1)
		out = append(out, fmt.Sprintf("CREATE TRIGGER IF NOT EXISTS %s AFTER UPDATE ON %s WHEN NOT %s AND (%s) BEGIN\n%sEND",
			quoteIdent(name[1]), quoteIdent(t.Name), t.pkChanged(), strings.Join(diff, " OR "), body))
	}
	return out
}
