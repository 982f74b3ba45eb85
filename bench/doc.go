// Package bench holds patina's reproducible benchmarks: each runs with one
// command (`patina bench NAME`), prints one table and can write JSON. See
// BENCHMARKS.md for the latest figures and what they mean.
package bench
