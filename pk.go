package patina

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Packed primary keys use cr-sqlite's column packing so changes name rows the
// way Corrosion does: one byte with the column count, then per column a type
// byte (nbytes<<3 | type) and the payload. INTEGER is big-endian in the
// fewest bytes that hold it (sign-extended on read), REAL is 8 bytes of IEEE
// bits, TEXT and BLOB carry their length in nbytes big-endian bytes followed
// by the bytes, NULL has no payload.
const (
	packInteger = 1
	packReal    = 2
	packText    = 3
	packBlob    = 4
	packNull    = 5
)

// PackPK encodes primary-key values.
func PackPK(vals []Value) []byte {
	out := make([]byte, 0, 1+len(vals)*9)
	out = append(out, byte(len(vals)))
	for _, v := range vals {
		switch v.Type {
		case TypeInteger:
			n := intWidth(v.Int)
			out = append(out, byte(n<<3|packInteger))
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], uint64(v.Int))
			out = append(out, buf[8-n:]...)
		case TypeReal:
			out = append(out, byte(8<<3|packReal))
			out = binary.BigEndian.AppendUint64(out, math.Float64bits(v.Float))
		case TypeText, TypeBlob:
			t := byte(packText)
			if v.Type == TypeBlob {
				t = packBlob
			}
			n := uintWidth(uint64(len(v.Bytes)))
			out = append(out, byte(n<<3)|t)
			var buf [8]byte
			binary.BigEndian.PutUint64(buf[:], uint64(len(v.Bytes)))
			out = append(out, buf[8-n:]...)
			out = append(out, v.Bytes...)
		default:
			out = append(out, packNull)
		}
	}
	return out
}

// UnpackPK decodes a packed primary key; it never panics on bad input. It
// accepts only the encoding PackPK produces (fewest bytes for integers and
// lengths, no width on NULL), so that a key has exactly one packed form and
// PackPK(UnpackPK(b)) == b.
func UnpackPK(b []byte) ([]Value, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("unpack pk: empty")
	}
	n := int(b[0])
	if n == 0 {
		return nil, fmt.Errorf("unpack pk: zero columns")
	}
	b = b[1:]
	vals := make([]Value, 0, n)
	for i := 0; i < n; i++ {
		if len(b) == 0 {
			return nil, fmt.Errorf("unpack pk: column %d: truncated", i)
		}
		tb := b[0]
		b = b[1:]
		width := int(tb >> 3)
		switch tb & 7 {
		case packInteger:
			if width < 1 || width > 8 || len(b) < width {
				return nil, fmt.Errorf("unpack pk: column %d: bad integer width %d", i, width)
			}
			var u uint64
			for _, c := range b[:width] {
				u = u<<8 | uint64(c)
			}
			shift := uint(64 - 8*width)
			v := int64(u<<shift) >> shift
			if intWidth(v) != width {
				return nil, fmt.Errorf("unpack pk: column %d: integer %d packed in %d bytes instead of %d", i, v, width, intWidth(v))
			}
			vals = append(vals, Int(v))
			b = b[width:]
		case packReal:
			if width != 8 || len(b) < 8 {
				return nil, fmt.Errorf("unpack pk: column %d: bad real", i)
			}
			vals = append(vals, Real(math.Float64frombits(binary.BigEndian.Uint64(b))))
			b = b[8:]
		case packText, packBlob:
			if width > 8 || len(b) < width {
				return nil, fmt.Errorf("unpack pk: column %d: bad length width %d", i, width)
			}
			var l uint64
			for _, c := range b[:width] {
				l = l<<8 | uint64(c)
			}
			b = b[width:]
			if uintWidth(l) != width {
				return nil, fmt.Errorf("unpack pk: column %d: length %d packed in %d bytes instead of %d", i, l, width, uintWidth(l))
			}
			if l > uint64(len(b)) {
				return nil, fmt.Errorf("unpack pk: column %d: length %d exceeds remaining %d bytes", i, l, len(b))
			}
			data := append([]byte{}, b[:l]...)
			b = b[l:]
			if tb&7 == packText {
				vals = append(vals, Value{Type: TypeText, Bytes: data})
			} else {
				vals = append(vals, Value{Type: TypeBlob, Bytes: data})
			}
		case packNull:
			if width != 0 {
				return nil, fmt.Errorf("unpack pk: column %d: NULL with width %d", i, width)
			}
			vals = append(vals, Null())
		default:
			return nil, fmt.Errorf("unpack pk: column %d: unknown type %d", i, tb&7)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("unpack pk: %d trailing bytes", len(b))
	}
	return vals, nil
}

func intWidth(v int64) int {
	for n := 1; n < 8; n++ {
		shift := uint(64 - 8*n)
		if (v<<shift)>>shift == v {
			return n
		}
	}
	return 8
}

func uintWidth(v uint64) int {
	n := 0
	for v > 0 {
		n++
		v >>= 8
	}
	return n
}
