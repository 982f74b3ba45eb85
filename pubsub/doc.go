// Package pubsub implements patina.SubscriptionService: subscriptions to
// read-only queries whose result changes are streamed as they happen, a
// durable change log to resume from, and per-table update streams. It is
// Corrosion's subscription engine (research/corrosion-internals.md §5),
// correct where Corrosion is not: aggregates, GROUP BY and DISTINCT
// (Corrosion issue #326), and resumes that never skip a change silently
// (issues #89, #90, #239).
//
// The agent calls Notify (its OnApplied hook) after every committed batch
// of new changesets, local and remote. Notify only records which rows of
// which tables changed and wakes one evaluation loop; a storm of changes
// coalesces into one pass (STYLE.md habit 18). A pass opens one read
// transaction on its own connection to the database file and, per
// subscription a change can affect:
//
//   - primary-key strategy (one table, no aggregates, subqueries or LIMIT):
//     every result row depends on one table row, so the query is re-run
//     restricted to the changed keys. Candidates are found without SQL: the
//     subscriptions holding a changed row, and those whose top-level
//     `column = constant` condition the row's new value meets (an index on
//     that value), plus those without such a condition;
//   - full strategy (plain joins): the query is re-run and diffed with rows
//     keyed by the primary keys of every table in FROM;
//   - content strategy (aggregates, GROUP BY, DISTINCT, compound selects,
//     CTEs): the query is re-run and diffed by row content with
//     multiplicity, so a changed aggregate is a delete and an insert.
//
// Each evaluation is bounded by EvalTimeout. The pass's changes are written
// to the change log (LogFile, one SQLite file beside the database) in one
// transaction, with the materialized rows and their stable row ids, before
// any event is streamed; then each client's bounded buffer receives them.
// A client that falls ListenerBuffer events behind is cut off with an
// error naming the change id to resume from; a resume older than the kept
// log (MaxChanges, MaxAge) fails with code EGONE, never with a gap. At
// Open the subscriptions in the log are restored and re-run once, so the
// changes made while the agent was down are streamed as changes.
//
// Results of queries calling time functions with 'now' are refreshed only
// when a table they read changes.
package pubsub
