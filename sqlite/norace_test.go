//go:build !race

package sqlite

// raceEnabled scales the property and fuzz-seed tests down under -race,
// where the SQLite translation runs about ten times slower.
const raceEnabled = false
