// Package crdt is patina's merge algebra and its hybrid logical clock. It is
// pure: it takes values and returns decisions, and the sqlite package applies
// them to the clock tables.
//
// # Merge rules
//
// The rules are cr-sqlite's, so that every replica converges to the same rows
// and the same clock metadata, byte for byte (DESIGN.md §1). Every row has a
// causal length (cl), the col_version of its sentinel clock
// (patina.SentinelColumn): odd means the row exists, even means it was
// deleted, and every insert or delete of the row increments it. Every cell
// (row, column) has a col_version, an edit counter (not a wall clock), the
// site that wrote it and its value.
//
//  1. Row existence: the higher causal length wins (ClassifyCL). A change
//     with a lower cl than ours is stale (RowIgnore). An even cl above ours
//     deletes the row, drops its column clocks and keeps one tombstone
//     sentinel (RowDelete): a delete beats every concurrent update, because
//     those were made at the lower, odd cl. An odd cl above ours (re)creates
//     the row and zeroes its column clocks, so that any column value at the
//     new cl wins (RowResurrect): a re-insert after a delete beats a
//     concurrent delete. At the same cl the columns merge one by one
//     (RowSame).
//  2. Same cl, per column: the higher col_version wins, so the cell edited
//     more often wins over a larger value (CellWins).
//  3. Equal col_version: the larger value wins, in SQLite's order across
//     storage classes: NULL lowest, then INTEGER and REAL compared
//     numerically, then TEXT, then BLOB (CompareValues). So 'started' beats
//     'destroyed'. CompareValues refines SQLite's order into a total one
//     (an INTEGER and an equal REAL, or 0.0 and -0.0, are never a tie) so
//     that replicas never depend on delivery order.
//  4. Equal value: the larger site id (bytes) wins. Two sentinels at the same
//     cl (concurrent inserts or concurrent deletes of the row) keep the
//     larger site's clock too (SentinelWins).
//
// Every decision is a strict total order on what it compares, so merging
// the same cells in any order, any number of times, picks the same winner.
//
// # Clock
//
// Clock is a hybrid logical clock in the shape of Corrosion's uhlc: a
// patina.Timestamp holds Unix milliseconds in its high 48 bits and a logical
// counter in its low 16. It stamps changesets for lag metrics and GC
// horizons only; it never decides a conflict. The wall clock is injected
// (Clock.Now) so tests run on a fake one.
package crdt
