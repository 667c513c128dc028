package durable

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/durable-go/durable/internal/msgp"
)

// A payload small on the wire can claim a large decoded value: a msgpack
// array of a million nils is 1 MB, and decoded into [][64]int64 the
// library allocates 512 MB for it before it reads the first element.
// Anyone who can Send can send one, and every recovery would decode it
// again. So before the library decodes a payload into a type that can
// grow (slices, maps, pointers, interfaces), checkDecodeBudget walks the
// bytes along the type and adds up what the decoder will allocate: each
// slice's and map's elements at their size in memory, each pointer's
// target, each string's bytes. A payload whose sum is over
// decodeFactor × Config.MaxPayloadBytes is refused with a *PayloadError.
// The walk allocates nothing and reads each byte once; mpCheck has
// already checked the lengths and the nesting depth.

// decodeFactor is how many times Config.MaxPayloadBytes a decoded payload
// may take in memory.
const decodeFactor = 64

// Sizes the walk charges for what the library makes when it decodes into
// an interface (map[string]any, []any): an interface value, a map entry.
const (
	ifaceSize    = 16
	mapEntrySize = 16 // per entry, beyond its key and value
)

// checkDecodeBudget reports an error if decoding b into a value of type t
// would allocate more than budget bytes.
func checkDecodeBudget(b []byte, t reflect.Type, budget int) error {
	if !mayGrow(t) {
		return nil
	}
	w := budgetWalk{r: msgp.NewReader(b), left: budget}
	w.value(t, 0)
	if w.left < 0 {
		return fmt.Errorf("the %d bytes would decode into more than %d bytes of %v (%d × Config.MaxPayloadBytes)", len(b), budget, t, decodeFactor)
	}
	return nil
}

type budgetWalk struct {
	r    msgp.Reader
	left int // bytes the decoder may still allocate; below 0: over
}

// value walks one value decoded into t (nil: into an interface, or
// nothing is allocated for it).
func (w *budgetWalk) value(t reflect.Type, depth int) {
	if w.left < 0 || w.r.Len() == 0 || w.r.Failed() || depth > maxDepth {
		return
	}
	generic := t == nil || t.Kind() == reflect.Interface || hasCustomDecoder(t)
	for !generic && t.Kind() == reflect.Pointer {
		w.left -= int(t.Elem().Size())
		t = t.Elem()
		generic = t.Kind() == reflect.Interface || hasCustomDecoder(t)
	}
	c := w.r.Peek()
	switch {
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd: // array
		n := w.r.ArrayLen()
		w.array(t, generic, n, depth)
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf: // map
		n := w.r.MapLen()
		w.mapValue(t, generic, n, depth)
	case c&0xe0 == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb: // str
		n := w.r.StrLen()
		w.left -= n
		w.r.Take(n)
	case c == 0xc4 || c == 0xc5 || c == 0xc6: // bin
		n := w.r.BinLen()
		w.left -= n
		w.r.Take(n)
	default:
		w.r.Skip(maxDepth - depth)
	}
}

func (w *budgetWalk) array(t reflect.Type, generic bool, n, depth int) {
	var elem reflect.Type // nil: interface elements
	var fields []reflect.Type
	switch {
	case generic:
		w.left -= n * ifaceSize
	case t.Kind() == reflect.Slice:
		elem = t.Elem()
		w.left -= n * int(elem.Size())
	case t.Kind() == reflect.Array:
		elem = t.Elem() // the array's memory is its parent's
	case t.Kind() == reflect.Struct: // a struct encoded as an array
		fields = fieldTypes(t).byIndex
	default:
		elem = t // the decoder will refuse it; charge as if it did not
	}
	for i := 0; i < n && w.left >= 0; i++ {
		switch {
		case fields != nil && i < len(fields):
			w.value(fields[i], depth+1)
		case fields != nil:
			w.r.Skip(maxDepth - depth - 1)
		default:
			w.value(elem, depth+1)
		}
	}
}

func (w *budgetWalk) mapValue(t reflect.Type, generic bool, n, depth int) {
	switch {
	case !generic && t.Kind() == reflect.Struct:
		ft := fieldTypes(t)
		for i := 0; i < n && w.left >= 0; i++ {
			name, ok := w.key()
			f, known := ft.byName[string(name)] // no copy for a lookup
			if !ok || !known {
				w.r.Skip(maxDepth - depth - 1) // an unknown field is skipped, not decoded
				continue
			}
			w.value(f, depth+1)
		}
		return
	case !generic && t.Kind() == reflect.Map:
		w.left -= n * (int(t.Key().Size()) + int(t.Elem().Size()) + mapEntrySize)
		for i := 0; i < n && w.left >= 0; i++ {
			w.value(t.Key(), depth+1)
			w.value(t.Elem(), depth+1)
		}
		return
	}
	w.left -= n * (2*ifaceSize + mapEntrySize)
	for i := 0; i < 2*n && w.left >= 0; i++ {
		w.value(nil, depth+1)
	}
}

// key reads a map key that is a string, or skips another key.
func (w *budgetWalk) key() ([]byte, bool) {
	if c := w.r.Peek(); c&0xe0 == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb {
		return w.r.Str(), true
	}
	w.r.Skip(maxDepth)
	return nil, false
}

// mayGrow reports whether a value of t can decode into more memory than
// its own size: whether it holds a slice, map, pointer, interface or
// string, or decodes itself.
func mayGrow(t reflect.Type) bool {
	if v, ok := growCache.Load(t); ok {
		return v.(bool)
	}
	g := typeMayGrow(t, map[reflect.Type]bool{})
	growCache.Store(t, g)
	return g
}

var growCache sync.Map // reflect.Type → bool

func typeMayGrow(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false // a cycle: the other path decides
	}
	seen[t] = true
	if hasCustomDecoder(t) {
		return true
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.String:
		return true
	case reflect.Array:
		return typeMayGrow(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if typeMayGrow(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

func hasCustomDecoder(t reflect.Type) bool {
	for _, m := range []reflect.Type{customDecoder, unmarshaler} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	return false
}

// structFields are a struct's fields as the decoder finds them: by the
// name it encodes them under (msgpack tag, else json tag, else the field
// name; embedded structs inlined), and in order for a struct encoded as
// an array.
type structFields struct {
	byName  map[string]reflect.Type
	byIndex []reflect.Type
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldTypes(t reflect.Type) *structFields {
	if v, ok := fieldCache.Load(t); ok {
		return v.(*structFields)
	}
	sf := &structFields{byName: map[string]reflect.Type{}}
	addFields(sf, t, 0)
	fieldCache.Store(t, sf)
	return sf
}

func addFields(sf *structFields, t reflect.Type, depth int) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !encodedField(f) {
			continue
		}
		tag, ok := f.Tag.Lookup("msgpack")
		if !ok {
			tag = f.Tag.Get("json")
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" && depth < 8 {
			inner := ft
			if inner.Kind() == reflect.Pointer {
				inner = inner.Elem()
			}
			if inner.Kind() == reflect.Struct {
				addFields(sf, inner, depth+1)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := sf.byName[name]; !dup {
			sf.byName[name] = ft
		}
		sf.byIndex = append(sf.byIndex, ft)
	}
}
