package msgp

import (
	"encoding/binary"
	"math"
	"strconv"
)

// Reader reads msgpack from a byte slice: the subset the journal's record
// format and the engine's plain codec read by hand. It never panics and
// allocates nothing: the first problem sticks (see [Reader.Failed]), and
// reads after it return zero values. Lengths are checked against the
// bytes that remain before the caller could allocate for them.
type Reader struct {
	b   []byte
	err string
}

// NewReader returns a Reader of b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// Failed reports whether a read failed.
func (r *Reader) Failed() bool { return r.err != "" }

// Problem describes the first failed read, or is "".
func (r *Reader) Problem() string { return r.err }

// Len is the number of bytes not read yet (0 after a failure).
func (r *Reader) Len() int { return len(r.b) }

// Fail records msg as the reader's problem unless it has one, and stops
// every later read.
func (r *Reader) Fail(msg string) {
	if r.err == "" {
		r.err = msg
	}
	r.b = nil
}

// Take returns the next n bytes, or nil (and fails) if fewer remain.
func (r *Reader) Take(n int) []byte {
	if r.err != "" {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.Fail("truncated value: need " + strconv.Itoa(n) + " bytes, have " + strconv.Itoa(len(r.b)))
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

// Peek returns the next type code without reading it, or 0xc1 (a code
// msgpack never uses) if nothing remains.
func (r *Reader) Peek() byte {
	if len(r.b) == 0 {
		return 0xc1
	}
	return r.b[0]
}

// Code reads a type code; 0xc1 (never used) if none could be read.
func (r *Reader) Code() byte {
	if p := r.Take(1); p != nil {
		return p[0]
	}
	return 0xc1
}

// Length reads a header with a length: a fix code (fix with its low bits
// under mask; mask 0: no fix form), or an 8-, 16- or 32-bit one (a zero
// code: no such form).
func (r *Reader) Length(fix, mask, c8, c16, c32 byte) int {
	c := r.Code()
	if r.err != "" {
		return 0
	}
	switch {
	case mask != 0 && c&^mask == fix:
		return int(c & mask)
	case c8 != 0 && c == c8:
		return r.count(1)
	case c16 != 0 && c == c16:
		return r.count(2)
	case c32 != 0 && c == c32:
		return r.count(4)
	}
	r.Fail("unexpected type code 0x" + strconv.FormatUint(uint64(c), 16))
	return 0
}

// count reads a big-endian unsigned length of width bytes.
func (r *Reader) count(width int) int {
	n := 0
	for _, x := range r.Take(width) {
		n = n<<8 | int(x)
	}
	return n
}

// ArrayLen reads an array header.
func (r *Reader) ArrayLen() int { return r.Length(0x90, 0x0f, 0, 0xdc, 0xdd) }

// MapLen reads a map header.
func (r *Reader) MapLen() int { return r.Length(0x80, 0x0f, 0, 0xde, 0xdf) }

// StrLen reads a str header.
func (r *Reader) StrLen() int { return r.Length(0xa0, 0x1f, 0xd9, 0xda, 0xdb) }

// BinLen reads a bin header.
func (r *Reader) BinLen() int { return r.Length(0, 0, 0xc4, 0xc5, 0xc6) }

// Str reads a str and returns its bytes, which alias the input.
func (r *Reader) Str() []byte { return r.Take(r.StrLen()) }

// Integer reads an integer in any of msgpack's forms: its bits, and
// whether it came in a signed form (a negative fixint, or int 8 to 64),
// sign-extended.
func (r *Reader) Integer() (bits uint64, signed bool) {
	c := r.Code()
	var width int
	switch {
	case r.err != "":
		return 0, false
	case c <= 0x7f:
		return uint64(c), false
	case c >= 0xe0:
		return uint64(int64(int8(c))), true
	case c >= 0xcc && c <= 0xcf:
		width = 1 << (c - 0xcc)
	case c >= 0xd0 && c <= 0xd3:
		width, signed = 1<<(c-0xd0), true
	default:
		r.Fail("expected an integer")
		return 0, false
	}
	p := r.Take(width)
	for _, x := range p {
		bits = bits<<8 | uint64(x)
	}
	if signed {
		shift := 64 - 8*width
		bits = uint64(int64(bits<<shift) >> shift)
	}
	return bits, signed
}

// Uint reads an integer that must be in [0, max].
func (r *Reader) Uint(max uint64) uint64 {
	bits, signed := r.Integer()
	if r.err == "" && ((signed && int64(bits) < 0) || bits > max) {
		r.Fail("integer out of range")
	}
	if r.err != "" {
		return 0
	}
	return bits
}

// Int reads an integer that fits an int64.
func (r *Reader) Int() int64 {
	bits, signed := r.Integer()
	if r.err == "" && !signed && bits > math.MaxInt64 {
		r.Fail("integer out of range")
	}
	if r.err != "" {
		return 0
	}
	return int64(bits)
}

// Bool reads a bool.
func (r *Reader) Bool() bool {
	switch r.Code() {
	case 0xc3:
		return true
	case 0xc2:
		return false
	}
	r.Fail("expected a bool")
	return false
}

// Float32 reads a float 32.
func (r *Reader) Float32() float32 {
	if r.Code() != 0xca {
		r.Fail("expected a float 32")
		return 0
	}
	if p := r.Take(4); p != nil {
		return math.Float32frombits(binary.BigEndian.Uint32(p))
	}
	return 0
}

// Float64 reads a float 64, or a float 32 widened.
func (r *Reader) Float64() float64 {
	switch r.Peek() {
	case 0xca:
		return float64(r.Float32())
	case 0xcb:
		r.Code()
		if p := r.Take(8); p != nil {
			return math.Float64frombits(binary.BigEndian.Uint64(p))
		}
		return 0
	}
	r.Fail("expected a float")
	return 0
}

// Skip reads past one value and the values inside it, failing if a
// length claims more bytes (or elements) than remain, or if values nest
// deeper than maxDepth.
func (r *Reader) Skip(maxDepth int) { r.skip(0, maxDepth) }

func (r *Reader) skip(depth, maxDepth int) {
	if depth > maxDepth {
		r.Fail("values nest deeper than " + strconv.Itoa(maxDepth))
		return
	}
	c := r.Code()
	switch {
	case r.err != "":
		return
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return
	case c&0xe0 == 0xa0: // fixstr
		r.Take(int(c & 0x1f))
		return
	case c&0xf0 == 0x90: // fixarray
		r.skipN(int(c&0x0f), depth, maxDepth)
		return
	case c&0xf0 == 0x80: // fixmap
		r.skipN(2*int(c&0x0f), depth, maxDepth)
		return
	}
	switch c {
	case 0xcc, 0xd0:
		r.Take(1)
	case 0xcd, 0xd1:
		r.Take(2)
	case 0xca, 0xce, 0xd2:
		r.Take(4)
	case 0xcb, 0xcf, 0xd3:
		r.Take(8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type + data
		r.Take(1 + 1<<(c-0xd4))
	case 0xc4, 0xd9:
		r.Take(r.count(1))
	case 0xc5, 0xda:
		r.Take(r.count(2))
	case 0xc6, 0xdb:
		r.Take(r.count(4))
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32: length, type, data
		n := r.count(1 << (c - 0xc7))
		r.Take(1)
		r.Take(n)
	case 0xdc:
		r.skipN(r.count(2), depth, maxDepth)
	case 0xdd:
		r.skipN(r.count(4), depth, maxDepth)
	case 0xde:
		r.skipN(2*r.count(2), depth, maxDepth)
	case 0xdf:
		r.skipN(2*r.count(4), depth, maxDepth)
	default:
		r.Fail("unexpected type code 0xc1")
	}
}

// skipN skips n values; each takes at least a byte, so a count larger
// than what remains fails at once.
func (r *Reader) skipN(n, depth, maxDepth int) {
	if n > len(r.b) {
		r.Fail("a length of " + strconv.Itoa(n) + " values runs past the end")
		return
	}
	for range n {
		if r.err != "" {
			return
		}
		r.skip(depth+1, maxDepth)
	}
}
