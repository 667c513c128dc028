package durable

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strings"

	"github.com/durable-go/durable/internal/msgp"
)

// The plain codec encodes and decodes values of plain types (see isPlain:
// booleans, numbers, strings, and arrays and structs of them) without the
// general msgpack library, which spends most of a step's engine time on
// reflection for them. It writes standard msgpack: structs as maps keyed
// by the names the library uses (the msgpack tag, else the json tag, else
// the field name), in field order, integers in their smallest form. It
// reads what either codec wrote; anything it does not expect (a field it
// does not know, an integer that does not fit, a nil) sends the value to
// the library's decoder instead, so a decoded value never differs from what
// the library would give.

// plainPlan is how to encode and decode one plain type.
type plainPlan struct {
	kind   reflect.Kind
	elem   *plainPlan // arrays
	n      int        // array length
	bytes  bool       // a byte array: msgpack bin, as the library writes it
	fields []plainField
}

type plainField struct {
	name      string
	index     int
	plan      *plainPlan
	omitEmpty bool
}

// planOf returns the plan of t, which isPlain accepted.
func planOf(t reflect.Type) *plainPlan {
	p := &plainPlan{kind: t.Kind()}
	switch t.Kind() {
	case reflect.Array:
		p.n = t.Len()
		p.bytes = t.Elem().Kind() == reflect.Uint8
		p.elem = planOf(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			tag, ok := f.Tag.Lookup("msgpack")
			if !ok {
				tag = f.Tag.Get("json")
			}
			name, opts, _ := strings.Cut(tag, ",")
			if name == "" {
				name = f.Name
			}
			p.fields = append(p.fields, plainField{
				name:      name,
				index:     i,
				plan:      planOf(f.Type),
				omitEmpty: hasOption(opts, "omitempty"),
			})
		}
	}
	return p
}

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// appendPlain appends the msgpack encoding of v.
func (p *plainPlan) appendPlain(b []byte, v reflect.Value) []byte {
	switch p.kind {
	case reflect.Bool:
		if v.Bool() {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return msgp.AppendInt(b, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return msgp.AppendUint(b, v.Uint())
	case reflect.Float32:
		return msgp.AppendFloat32(b, float32(v.Float()))
	case reflect.Float64:
		return msgp.AppendFloat64(b, v.Float())
	case reflect.String:
		return msgp.AppendString(b, v.String())
	case reflect.Array:
		if p.bytes {
			b = msgp.AppendBinHeader(b, p.n)
			for i := range p.n {
				b = append(b, byte(v.Index(i).Uint()))
			}
			return b
		}
		b = msgp.AppendArrayHeader(b, p.n)
		for i := range p.n {
			b = p.elem.appendPlain(b, v.Index(i))
		}
		return b
	}
	// A struct: a map of its fields, but those omitempty leaves out.
	n := 0
	for i := range p.fields {
		if !p.fields[i].omitEmpty || !v.Field(p.fields[i].index).IsZero() {
			n++
		}
	}
	b = msgp.AppendMapHeader(b, n)
	for i := range p.fields {
		f := &p.fields[i]
		fv := v.Field(f.index)
		if f.omitEmpty && fv.IsZero() {
			continue
		}
		b = msgp.AppendString(b, f.name)
		b = f.plan.appendPlain(b, fv)
	}
	return b
}

// decodePlain decodes one value into v (settable). It reports false when
// the bytes are not what it expects; v is then partly written, and the
// caller decodes again with the library.
func (p *plainPlan) decodePlain(r *mpReader, v reflect.Value) bool {
	switch p.kind {
	case reflect.Bool:
		switch r.byte() {
		case 0xc3:
			v.SetBool(true)
			return true
		case 0xc2:
			v.SetBool(false)
			return true
		}
		return false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := r.int()
		if !ok || v.OverflowInt(n) {
			return false
		}
		v.SetInt(n)
		return true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := r.uint()
		if !ok || v.OverflowUint(n) {
			return false
		}
		v.SetUint(n)
		return true
	case reflect.Float32:
		if r.byte() != 0xca {
			return false
		}
		bs := r.take(4)
		if bs == nil {
			return false
		}
		v.SetFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(bs))))
		return true
	case reflect.Float64:
		switch r.byte() {
		case 0xcb:
			if bs := r.take(8); bs != nil {
				v.SetFloat(math.Float64frombits(binary.BigEndian.Uint64(bs)))
				return true
			}
		case 0xca:
			if bs := r.take(4); bs != nil {
				v.SetFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(bs))))
				return true
			}
		}
		return false
	case reflect.String:
		n, ok := r.length(0xa0, 0x1f, 0xd9, 0xda, 0xdb)
		if !ok {
			return false
		}
		bs := r.take(n)
		if bs == nil {
			return false
		}
		v.SetString(string(bs))
		return true
	case reflect.Array:
		if p.bytes {
			n, ok := r.length(0, 0, 0xc4, 0xc5, 0xc6)
			bs := r.take(n)
			if !ok || n != p.n || bs == nil {
				return false
			}
			for i := range n {
				v.Index(i).SetUint(uint64(bs[i]))
			}
			return true
		}
		n, ok := r.length(0x90, 0x0f, 0, 0xdc, 0xdd)
		if !ok || n != p.n {
			return false
		}
		for i := range n {
			if !p.elem.decodePlain(r, v.Index(i)) {
				return false
			}
		}
		return true
	}
	n, ok := r.length(0x80, 0x0f, 0, 0xde, 0xdf)
	if !ok {
		return false
	}
	for range n {
		kn, ok := r.length(0xa0, 0x1f, 0xd9, 0xda, 0xdb)
		key := r.take(kn)
		if !ok || key == nil {
			return false
		}
		f := p.field(key)
		if f == nil || !f.plan.decodePlain(r, v.Field(f.index)) {
			return false // an unknown field: the library skips it
		}
	}
	return true
}

func (p *plainPlan) field(name []byte) *plainField {
	for i := range p.fields {
		if p.fields[i].name == string(name) {
			return &p.fields[i]
		}
	}
	return nil
}

// mpReader reads msgpack from a byte slice; a short read gives nil or
// false, never a panic.
type mpReader struct{ b []byte }

func (r *mpReader) take(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.b = nil
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *mpReader) byte() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0xc1 // never used by msgpack: no type matches it
}

// length reads a length: a fix code (fix with its low bits under mask),
// or an 8-, 16- or 32-bit one (a zero code means that width is not
// allowed).
func (r *mpReader) length(fix, mask, c8, c16, c32 byte) (int, bool) {
	c := r.byte()
	switch {
	case mask != 0 && c&^mask == fix:
		return int(c & mask), true
	case c8 != 0 && c == c8:
		if p := r.take(1); p != nil {
			return int(p[0]), true
		}
	case c == c16:
		if p := r.take(2); p != nil {
			return int(binary.BigEndian.Uint16(p)), true
		}
	case c == c32:
		if p := r.take(4); p != nil {
			return int(binary.BigEndian.Uint32(p)), true
		}
	}
	return 0, false
}

// integer reads any msgpack integer: its bits, and whether it came in a
// signed form (a negative fixint, or int8 to int64).
func (r *mpReader) integer() (bits uint64, signed, ok bool) {
	c := r.byte()
	var width int
	switch {
	case c <= 0x7f:
		return uint64(c), false, true
	case c >= 0xe0:
		return uint64(int64(int8(c))), true, true
	case c >= 0xcc && c <= 0xcf:
		width = 1 << (c - 0xcc)
	case c >= 0xd0 && c <= 0xd3:
		width, signed = 1<<(c-0xd0), true
	default:
		return 0, false, false
	}
	p := r.take(width)
	if p == nil {
		return 0, false, false
	}
	for _, x := range p {
		bits = bits<<8 | uint64(x)
	}
	if signed { // sign-extend
		shift := 64 - 8*width
		bits = uint64(int64(bits<<shift) >> shift)
	}
	return bits, signed, true
}

func (r *mpReader) int() (int64, bool) {
	bits, signed, ok := r.integer()
	if !ok || (!signed && bits > math.MaxInt64) {
		return 0, false
	}
	return int64(bits), true
}

func (r *mpReader) uint() (uint64, bool) {
	bits, signed, ok := r.integer()
	if !ok || (signed && int64(bits) < 0) {
		return 0, false
	}
	return bits, true
}

// mpCheck walks one msgpack value and the values inside it, and fails if a
// length claims more bytes (or elements) than remain, or the nesting is
// deeper than maxDepth. The library allocates what a length claims before
// it finds the bytes missing, so a damaged length could ask for gigabytes;
// unmarshal runs this first. It allocates nothing.
func mpCheck(b []byte) error {
	r := mpReader{b: b}
	if !r.skip(0) {
		return errMalformed
	}
	if len(r.b) != 0 {
		return errMalformed
	}
	return nil
}

var errMalformed = errors.New("malformed msgpack: a length runs past the end of the data, or the nesting is too deep")

// skip reads past one value.
func (r *mpReader) skip(depth int) bool {
	if depth > maxDepth || len(r.b) == 0 {
		return false
	}
	c := r.byte()
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return true
	case c&0xe0 == 0xa0: // fixstr
		return r.take(int(c&0x1f)) != nil
	case c&0xf0 == 0x90: // fixarray
		return r.skipN(int(c&0x0f), depth)
	case c&0xf0 == 0x80: // fixmap
		return r.skipN(2*int(c&0x0f), depth)
	}
	switch c {
	case 0xcc, 0xd0:
		return r.take(1) != nil
	case 0xcd, 0xd1:
		return r.take(2) != nil
	case 0xca, 0xce, 0xd2:
		return r.take(4) != nil
	case 0xcb, 0xcf, 0xd3:
		return r.take(8) != nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16: type + data
		return r.take(1+1<<(c-0xd4)) != nil
	case 0xc4, 0xd9:
		return r.skipBytes(1, 0)
	case 0xc5, 0xda:
		return r.skipBytes(2, 0)
	case 0xc6, 0xdb:
		return r.skipBytes(4, 0)
	case 0xc7:
		return r.skipBytes(1, 1)
	case 0xc8:
		return r.skipBytes(2, 1)
	case 0xc9:
		return r.skipBytes(4, 1)
	case 0xdc:
		n, ok := r.count(2)
		return ok && r.skipN(n, depth)
	case 0xdd:
		n, ok := r.count(4)
		return ok && r.skipN(n, depth)
	case 0xde:
		n, ok := r.count(2)
		return ok && r.skipN(2*n, depth)
	case 0xdf:
		n, ok := r.count(4)
		return ok && r.skipN(2*n, depth)
	}
	return false // 0xc1, never used
}

func (r *mpReader) count(width int) (int, bool) {
	p := r.take(width)
	if p == nil {
		return 0, false
	}
	n := 0
	for _, x := range p {
		n = n<<8 | int(x)
	}
	return n, true
}

// skipBytes skips a length of width bytes, extra bytes (an ext's type),
// then that many bytes.
func (r *mpReader) skipBytes(width, extra int) bool {
	n, ok := r.count(width)
	return ok && r.take(extra) != nil && r.take(n) != nil
}

// skipN skips n values; each takes at least a byte, so a count larger
// than what remains fails at once.
func (r *mpReader) skipN(n, depth int) bool {
	if n > len(r.b) {
		return false
	}
	for range n {
		if !r.skip(depth + 1) {
			return false
		}
	}
	return true
}
