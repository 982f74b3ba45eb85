package wire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

// FuzzUnmarshal feeds arbitrary bytes to Unmarshal: it must never panic, and
// a message it accepts must survive Marshal and Unmarshal again unchanged.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(Marshal(nil, m))
	}
	// Hostile inputs: a count far beyond the bytes, an overlong varint, a
	// NaN, a newer peer, an unknown type.
	f.Add(frameOf(TypeChangesets, append(make([]byte, 17), 0xff, 0xff, 0xff, 0xff, 0x0f)))
	f.Add(frameOf(TypeSyncNeeds, []byte{0x80, 0x80, 0x80, 0}))
	f.Add(Marshal(nil, &SyncChangeset{Set: patina.Changeset{Version: 1, Changes: []patina.Change{{Table: "t", Value: patina.Real(math.NaN())}}}}))
	f.Add([]byte{Magic, 0, 2, 1, 0})
	f.Add(frameOf(200, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			if m != nil {
				t.Fatalf("Unmarshal returned both %T and %v", m, err)
			}
			var de *DecodeError
			var ve *VersionError
			switch {
			case errors.As(err, &de):
				if de.Size != len(b) || de.Offset < 0 || de.Offset > de.Size {
					t.Fatalf("error %v: offset %d, size %d for a %d-byte frame", err, de.Offset, de.Size, len(b))
				}
			case !errors.As(err, &ve):
				t.Fatalf("error %T %v is neither *DecodeError nor *VersionError", err, err)
			}
			return
		}
		frame := Marshal(nil, m)
		again, err := Unmarshal(frame)
		if err != nil {
			t.Fatalf("re-marshalled %s does not decode: %v", m.Type(), err)
		}
		if d := diff(m, again); d != "" {
			t.Fatalf("re-marshalled %s differs at %s", m.Type(), d)
		}
		if !bytes.Equal(Marshal(nil, again), frame) {
			t.Fatalf("%s: encoding is not stable", m.Type())
		}
	})
}

// FuzzReadFrame reads frames from arbitrary bytes under an arbitrary limit:
// it must never panic, never return a frame over the limit, and return
// exactly the bytes of the stream, in order.
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	for _, m := range sampleMessages() {
		frame := Marshal(nil, m)
		f.Add(frame, uint32(0))
		f.Add(frame, uint32(len(frame)))
		stream = append(stream, frame...)
	}
	f.Add(stream, uint32(64))
	f.Add([]byte{Magic, 0, 1, 3, 0xff, 0xff, 0xff, 0xff, 0x7f}, uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, max uint32) {
		limit := int(max % (1 << 20))
		r := bytes.NewReader(b)
		var read int
		for {
			frame, err := ReadFrame(r, limit)
			if err != nil {
				if err == io.EOF && read != len(b) {
					t.Fatalf("io.EOF after %d of %d bytes", read, len(b))
				}
				return
			}
			if l := limit; l <= 0 && len(frame) > MaxFrameSize || l > 0 && len(frame) > l {
				t.Fatalf("frame of %d bytes over the limit %d", len(frame), limit)
			}
			if !bytes.Equal(frame, b[read:read+len(frame)]) {
				t.Fatalf("frame is not the next %d bytes of the stream", len(frame))
			}
			read += len(frame)
			// Whatever ReadFrame cut out, Unmarshal agrees on its bounds
			// (it may still refuse the type or the payload).
			var de *DecodeError
			if _, err := Unmarshal(frame); errors.As(err, &de) &&
				(strings.HasPrefix(de.Path, "header: payload length") || de.Path == "header: magic" || strings.HasSuffix(de.Reason, "after the frame")) {
				t.Fatalf("Unmarshal disagrees with ReadFrame on the frame bounds: %v", err)
			}
		}
	})
}
