package durable

import (
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
func (p *plainPlan) decodePlain(r *msgp.Reader, v reflect.Value) bool {
	switch p.kind {
	case reflect.Bool:
		v.SetBool(r.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := r.Int(); !v.OverflowInt(n) {
			v.SetInt(n)
		} else {
			r.Fail("integer out of range")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n := r.Uint(math.MaxUint64); !v.OverflowUint(n) {
			v.SetUint(n)
		} else {
			r.Fail("integer out of range")
		}
	case reflect.Float32:
		v.SetFloat(float64(r.Float32()))
	case reflect.Float64:
		v.SetFloat(r.Float64())
	case reflect.String:
		v.SetString(string(r.Str()))
	case reflect.Array:
		return p.decodeArray(r, v)
	default:
		return p.decodeStruct(r, v)
	}
	return !r.Failed()
}

// decodeArray decodes an array: a bin for an array of bytes.
func (p *plainPlan) decodeArray(r *msgp.Reader, v reflect.Value) bool {
	if p.bytes {
		bs := r.Take(r.BinLen())
		if r.Failed() || len(bs) != p.n {
			return false
		}
		for i, b := range bs {
			v.Index(i).SetUint(uint64(b))
		}
		return true
	}
	if n := r.ArrayLen(); r.Failed() || n != p.n {
		return false
	}
	for i := range p.n {
		if !p.elem.decodePlain(r, v.Index(i)) {
			return false
		}
	}
	return true
}

// decodeStruct decodes a struct from a map of its fields by name.
func (p *plainPlan) decodeStruct(r *msgp.Reader, v reflect.Value) bool {
	n := r.MapLen()
	for range n {
		key := r.Str()
		if r.Failed() {
			return false
		}
		f := p.field(key)
		if f == nil || !f.plan.decodePlain(r, v.Field(f.index)) {
			return false // an unknown field: the library skips it
		}
	}
	return !r.Failed()
}

func (p *plainPlan) field(name []byte) *plainField {
	for i := range p.fields {
		if p.fields[i].name == string(name) {
			return &p.fields[i]
		}
	}
	return nil
}

// mpCheck walks one msgpack value and the values inside it, and fails if a
// length claims more bytes (or elements) than remain, or the nesting is
// deeper than maxDepth. The library allocates what a length claims before
// it finds the bytes missing, so a damaged length could ask for gigabytes;
// unmarshal runs this first. It allocates nothing.
func mpCheck(b []byte) error {
	r := msgp.NewReader(b)
	r.Skip(maxDepth)
	if r.Failed() || r.Len() != 0 {
		return errMalformed
	}
	return nil
}

var errMalformed = errors.New("malformed msgpack: a length runs past the end of the data, or the nesting is too deep")
