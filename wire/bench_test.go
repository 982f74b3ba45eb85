package wire

import "testing"

func benchChangeset() *SyncChangeset {
	// 25 rows of 4 cells (a sentinel and 3 columns) over 2 tables: 100 changes.
	return &SyncChangeset{Set: bigChangeset(actor(7), 1_234_567, 2, 25, 4)}
}

func BenchmarkMarshalChangeset(b *testing.B) {
	m := benchChangeset()
	buf := Marshal(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = Marshal(buf[:0], m)
	}
}

func BenchmarkUnmarshalChangeset(b *testing.B) {
	frame := Marshal(nil, benchChangeset())
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChangesetSize(b *testing.B) {
	m := benchChangeset()
	b.ReportAllocs()
	for b.Loop() {
		_ = ChangesetSize(&m.Set)
	}
}
