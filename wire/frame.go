package wire

import (
	"errors"
	"fmt"
	"io"
)

// readChunk is how much ReadFrame allocates before the payload's bytes have
// arrived; the buffer then doubles as they do, so a peer that announces a
// large frame and stalls holds little memory.
const readChunk = 64 << 10

// ReadFrame reads one frame from r and returns it whole, header included,
// ready for Unmarshal. It refuses, before allocating, a frame whose header
// announces more than max bytes (max <= 0 means MaxFrameSize), and returns a
// *VersionError for a frame of another protocol version without reading its
// payload. At a clean end of stream (no byte of a new frame) it returns
// io.EOF itself.
//
// ReadFrame reads the header a byte at a time: wrap a network connection in
// a bufio.Reader.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	if max <= 0 {
		max = MaxFrameSize
	}
	var hdr [maxHeader]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("wire: read frame: %w", err)
	}
	if hdr[0] != Magic {
		return nil, fmt.Errorf("wire: read frame: first byte 0x%02x is not the patina magic 0x%02x (not a patina data-plane frame)", hdr[0], Magic)
	}
	if _, err := io.ReadFull(r, hdr[1:3]); err != nil {
		return nil, fmt.Errorf("wire: read frame: header: %w", unexpected(err))
	}
	if v := uint16(hdr[1])<<8 | uint16(hdr[2]); v != ProtocolVersion {
		return nil, &VersionError{Got: v, Want: ProtocolVersion}
	}
	if _, err := io.ReadFull(r, hdr[3:4]); err != nil {
		return nil, fmt.Errorf("wire: read frame: header: %w", unexpected(err))
	}
	typ := Type(hdr[3])
	// Payload length: a uvarint of at most 10 bytes.
	var n uint64
	hlen := headerFixed
	for shift := uint(0); ; shift += 7 {
		if hlen == maxHeader {
			return nil, fmt.Errorf("wire: read frame: %s header: payload length varint longer than 10 bytes", typ)
		}
		if _, err := io.ReadFull(r, hdr[hlen:hlen+1]); err != nil {
			return nil, fmt.Errorf("wire: read frame: %s header: %w", typ, unexpected(err))
		}
		c := hdr[hlen]
		hlen++
		if hlen == maxHeader && c > 1 {
			return nil, fmt.Errorf("wire: read frame: %s header: payload length overflows 64 bits", typ)
		}
		n |= uint64(c&0x7f) << shift
		if c < 0x80 {
			break
		}
	}
	if n > uint64(max) || hlen+int(n) > max {
		return nil, fmt.Errorf("wire: read frame: %s frame of %d payload bytes exceeds the limit of %d bytes per frame", typ, n, max)
	}
	total := hlen + int(n)
	buf := make([]byte, hlen, min(total, readChunk))
	copy(buf, hdr[:hlen])
	for len(buf) < total {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(total, 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, fmt.Errorf("wire: read frame: %s frame truncated after %d of %d payload bytes: %w", typ, len(buf)-hlen, n, unexpected(err))
		}
	}
	return buf, nil
}

// unexpected turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// WriteFrame writes one frame made by Marshal to w. It checks the frame's
// header first, so a slice that is not exactly one frame never reaches the
// stream and desynchronizes the peer.
func WriteFrame(w io.Writer, b []byte) error {
	d := decoder{b: b}
	h, ok := d.header()
	if !ok {
		return fmt.Errorf("wire: write frame: %w", d.error())
	}
	if h.version != ProtocolVersion {
		return fmt.Errorf("wire: write frame: %w", &VersionError{Got: h.version, Want: ProtocolVersion})
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("wire: write %s frame: %w", h.typ, err)
	}
	return nil
}
