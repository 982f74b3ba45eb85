package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadFrame_RoundTrip(t *testing.T) {
	var buf bytes.Buffer
	msgs := sampleMessages()
	for _, m := range msgs {
		if err := WriteFrame(&buf, Marshal(nil, m)); err != nil {
			t.Fatal(err)
		}
	}
	for name, r := range map[string]io.Reader{
		"buffered": bufio.NewReader(bytes.NewReader(buf.Bytes())),
		"oneByte":  iotest.OneByteReader(bytes.NewReader(buf.Bytes())),
		"dataErr":  iotest.DataErrReader(bytes.NewReader(buf.Bytes())),
	} {
		t.Run(name, func(t *testing.T) {
			for _, want := range msgs {
				frame, err := ReadFrame(r, 0)
				if err != nil {
					t.Fatalf("read %s: %v", want.Type(), err)
				}
				got, err := Unmarshal(frame)
				if err != nil {
					t.Fatal(err)
				}
				if d := diff(want, got); d != "" {
					t.Fatalf("%s differs at %s", want.Type(), d)
				}
			}
			if _, err := ReadFrame(r, 0); err != io.EOF {
				t.Fatalf("at end of stream: err = %v, want io.EOF", err)
			}
		})
	}
}

func TestReadFrame_LargeFrame(t *testing.T) {
	// Bigger than readChunk, so the buffer grows while the payload arrives.
	m := &Error{Message: strings.Repeat("x", 5*readChunk+3)}
	frame := Marshal(nil, m)
	got, err := ReadFrame(iotest.HalfReader(bytes.NewReader(frame)), 0)
	if err != nil || !bytes.Equal(got, frame) {
		t.Fatalf("ReadFrame = %d bytes, %v; want the %d-byte frame", len(got), err, len(frame))
	}
}

func TestReadFrame_Truncated(t *testing.T) {
	frame := Marshal(nil, &SyncChangeset{Set: bigChangeset(actor(1), 1, 2, 3, 3)})
	for n := 1; n < len(frame); n++ {
		_, err := ReadFrame(bytes.NewReader(frame[:n]), 0)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("prefix of %d bytes: err = %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
	if _, err := ReadFrame(bytes.NewReader(nil), 0); err != io.EOF {
		t.Fatalf("empty stream: err = %v, want io.EOF", err)
	}
	_, err := ReadFrame(bytes.NewReader(frame[:len(frame)-1]), 0)
	if want := "wire: read frame: SyncChangeset frame truncated after"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want prefix %q", err, want)
	}
}

func TestReadFrame_Refuses(t *testing.T) {
	hdr := func(n uint64) []byte {
		return binary.AppendUvarint([]byte{Magic, 0, 1, byte(TypeChangesets)}, n)
	}
	tests := []struct {
		name string
		in   []byte
		max  int
		want string
	}{
		{"magic", []byte("GET / HTTP/1.1\r\n"), 0, "wire: read frame: first byte 0x47 is not the patina magic 0xb7"},
		{"tls", []byte{0x16, 3, 1}, 0, "first byte 0x16"},
		{"overMax", append(hdr(100), make([]byte, 100)...), 50, "wire: read frame: Changesets frame of 100 payload bytes exceeds the limit of 50 bytes per frame"},
		{"headerCountsToMax", append(hdr(47), make([]byte, 47)...), 50, "exceeds the limit of 50"},
		{"overDefault", hdr(MaxFrameSize), 0, "exceeds the limit of 8388608"},
		{"huge", hdr(1 << 62), 1 << 30, "exceeds the limit"},
		{"varintTooLong", append([]byte{Magic, 0, 1, 3}, bytes.Repeat([]byte{0x80}, 10)...), 0, "payload length overflows 64 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in), tt.max)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// Exactly max is fine.
	frame := append(hdr(45), make([]byte, 45)...)
	if _, err := ReadFrame(bytes.NewReader(frame), 50); err != nil {
		t.Fatalf("frame of exactly max bytes: %v", err)
	}
}

func TestReadFrame_VersionMismatch(t *testing.T) {
	frame := Marshal(nil, &Hello{})
	frame[2] = 7
	_, err := ReadFrame(bytes.NewReader(frame), 0)
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Got != 7 {
		t.Fatalf("err = %v, want *VersionError for v7", err)
	}
}

// allocated returns the bytes allocated while running fn.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReadFrame_DoesNotTrustLength(t *testing.T) {
	hdr := func(n uint64) []byte {
		return binary.AppendUvarint([]byte{Magic, 0, 1, byte(TypeChangesets)}, n)
	}
	t.Run("oversized", func(t *testing.T) {
		// A header announcing 4 GiB is refused before anything is
		// allocated for it.
		var err error
		n := allocated(func() { _, err = ReadFrame(bytes.NewReader(hdr(1<<32)), 0) })
		if err == nil || n > 16<<10 {
			t.Fatalf("err = %v after allocating %d bytes; want refusal allocating < 16 KiB", err, n)
		}
	})
	t.Run("stalled", func(t *testing.T) {
		// A header announcing just under the limit, then 10 bytes: memory
		// follows the bytes that arrived, not the announced length.
		in := append(hdr(MaxFrameSize-100), make([]byte, 10)...)
		var err error
		n := allocated(func() { _, err = ReadFrame(bytes.NewReader(in), 0) })
		if !errors.Is(err, io.ErrUnexpectedEOF) || n > 2*readChunk {
			t.Fatalf("err = %v after allocating %d bytes; want io.ErrUnexpectedEOF allocating < %d", err, n, 2*readChunk)
		}
	})
}

func TestWriteFrame(t *testing.T) {
	frame := Marshal(nil, &SyncDone{})
	for name, tt := range map[string]struct {
		b    []byte
		want string
	}{
		"empty":     {nil, "wire: write frame: wire: decode frame: header: magic: truncated"},
		"twoFrames": {append(bytes.Clone(frame), frame...), "trailing bytes after the frame"},
		"cut":       {Marshal(nil, &Error{Message: "abc"})[:7], "payload length: truncated"},
		"version":   {[]byte{Magic, 0, 2, 1, 0}, "peer speaks wire protocol v2"},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteFrame(&buf, tt.b)
			if err == nil || !strings.Contains(err.Error(), tt.want) || buf.Len() != 0 {
				t.Fatalf("err = %v, wrote %d bytes; want %q and nothing written", err, buf.Len(), tt.want)
			}
		})
	}
	err := WriteFrame(failWriter{}, frame)
	if want := "wire: write SyncDone frame: disk on fire"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }
