package durable

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/durable-go/durable/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// Payloads (inputs, results, messages) are msgpack. Struct fields use their
// `msgpack` tag, else their `json` tag, else their name. Values that
// msgpack cannot represent (channels, functions) and values that contain a
// cycle are refused with a [PayloadError] before anything is written; a
// cycle would otherwise make the encoder recurse until the process dies.

type codecState struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
	rd  bytes.Reader
	dec *msgpack.Decoder
}

var codecPool = sync.Pool{New: func() any {
	s := &codecState{}
	s.enc = msgpack.NewEncoder(&s.buf)
	s.enc.SetCustomStructTag("json")
	s.dec = msgpack.NewDecoder(&s.rd)
	s.dec.SetCustomStructTag("json")
	return s
}}

// marshal encodes v. The result is a fresh slice the caller owns.
func marshal(v any) (b []byte, err error) {
	rv := reflect.ValueOf(v)
	if rv.IsValid() {
		if err := checkEncodable(rv, infoOfType(rv.Type())); err != nil {
			return nil, err
		}
	}
	return encode(v)
}

// encode is marshal without the cycle check.
func encode(v any) (b []byte, err error) {
	s := codecPool.Get().(*codecState)
	s.buf.Reset()
	if p := protect(func() { err = s.enc.Encode(v) }); p != nil { // a MarshalMsgpack method that panics
		return nil, fmt.Errorf("msgpack encoder panicked: %w", p) // s is dropped: its state is unknown
	}
	if err == nil {
		b = bytes.Clone(s.buf.Bytes())
	}
	if s.buf.Cap() <= 64<<10 {
		codecPool.Put(s)
	}
	return b, err
}

// unmarshal decodes b into the value v points to; all of b must be used.
// b is checked first (mpCheck): the library would allocate what a damaged
// length claims.
func unmarshal(b []byte, v any) (err error) {
	if err := mpCheck(b); err != nil {
		return err
	}
	return unmarshalChecked(b, v)
}

// unmarshalChecked is unmarshal of b that mpCheck accepted.
func unmarshalChecked(b []byte, v any) (err error) {
	s := codecPool.Get().(*codecState)
	s.rd.Reset(b)
	s.dec.Reset(&s.rd)
	s.dec.SetCustomStructTag("json")
	if p := protect(func() { err = s.dec.Decode(v) }); p != nil { // an UnmarshalMsgpack method that panics
		return fmt.Errorf("msgpack decoder panicked: %w", p) // s is dropped: its state is unknown
	}
	if n := s.rd.Len(); err == nil && n != 0 {
		err = fmt.Errorf("%d bytes left over after decoding %T", n, v)
	}
	s.rd.Reset(nil)
	codecPool.Put(s)
	return err
}

// encodePayload encodes v within limit bytes (0: no limit). Its error is a
// *PayloadError whose What the caller fills in with [payloadErr], so the
// description costs nothing when all goes well.
func encodePayload(v any, limit int) ([]byte, error) {
	return encodeChecked(v, limit, nil)
}

// encodeChecked is encodePayload for a value whose type's info the caller
// has already looked up (nil: look it up).
func encodeChecked(v any, limit int, ti *typeInfo) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if ti == nil && rv.IsValid() {
		ti = infoOfType(rv.Type())
	}
	var err error
	var b []byte
	switch {
	case ti != nil && ti.plan != nil:
		b = ti.plan.appendPlain(make([]byte, 0, 64), rv)
	default:
		if err = checkEncodable(rv, ti); err == nil {
			b, err = encode(v)
		}
	}
	if err != nil {
		return nil, &PayloadError{Op: "encode", Err: err}
	}
	if limit > 0 && len(b) > limit {
		return nil, &PayloadError{Op: "encode", Size: len(b), Limit: limit}
	}
	return b, nil
}

// decodeTyped decodes b into *v, with the plain codec when T is plain.
// limit is Config.MaxPayloadBytes (see decodePayload).
func decodeTyped[T any](b []byte, v *T, limit int) error {
	if ti := infoOfType(reflect.TypeFor[T]()); ti.plan != nil {
		r := msgp.NewReader(b)
		if ti.plan.decodePlain(&r, reflect.ValueOf(v).Elem()) && r.Len() == 0 {
			return nil
		}
		var zero T
		*v = zero // the library decodes into a clean value, as it would have
	}
	return decodePayload(b, v, limit)
}

// decodePayload decodes b into *v; its error is a *PayloadError like
// encodePayload's. limit is Config.MaxPayloadBytes: a msgpack payload that
// would decode into more than decodeFactor times it is refused unread
// (see checkDecodeBudget).
func decodePayload(b []byte, v any, limit int) error {
	if j, ok := jsonMessage(b); ok {
		if err := json.Unmarshal(j, v); err != nil {
			return &PayloadError{Op: "decode", Size: len(b), Err: err}
		}
		return nil
	}
	if err := mpCheck(b); err != nil {
		return &PayloadError{Op: "decode", Size: len(b), Err: err}
	}
	if t := reflect.TypeOf(v); limit > 0 && t != nil && t.Kind() == reflect.Pointer {
		if err := checkDecodeBudget(b, t.Elem(), decodeFactor*limit); err != nil {
			return &PayloadError{Op: "decode", Size: len(b), Err: err}
		}
	}
	if err := unmarshalChecked(b, v); err != nil {
		return &PayloadError{Op: "decode", Size: len(b), Err: err}
	}
	return nil
}

// payloadErr names the payload a *PayloadError is about.
func payloadErr(err error, format string, args ...any) error {
	if pe, ok := err.(*PayloadError); ok && pe.What == "" {
		pe.What = fmt.Sprintf(format, args...)
	}
	return err
}

// maxDepth bounds how deeply nested a payload may be.
const maxDepth = 1000

var errCycle = errors.New("value contains a cycle")

// checkEncodable walks v when its type (whose info is ti, nil for no
// value) can hold a cycle (pointers, interfaces, maps or slices that can
// reach themselves) and refuses cycles and nesting deeper than maxDepth.
func checkEncodable(v reflect.Value, ti *typeInfo) error {
	if ti == nil || !ti.mayCycle {
		return nil
	}
	w := walker{onPath: map[pathKey]bool{}}
	return w.walk(v, 0)
}

// typeInfo is what the codec knows of a type, computed once.
type typeInfo struct {
	mayCycle bool       // a value can reach itself: walk it before encoding
	plain    bool       // msgpack gives back an equal, unshared value: see isPlain
	plan     *plainPlan // for plain types: the fast codec (plaincodec.go)
}

var typeInfos sync.Map // reflect.Type → *typeInfo

func infoOfType(t reflect.Type) *typeInfo {
	if v, ok := typeInfos.Load(t); ok {
		return v.(*typeInfo)
	}
	ti := &typeInfo{mayCycle: typeMayCycle(t, map[reflect.Type]bool{}), plain: isPlain(t, 0)}
	if ti.plain {
		ti.plan = planOf(t)
	}
	typeInfos.Store(t, ti)
	return ti
}

func mayCycle(t reflect.Type) bool { return infoOfType(t).mayCycle }

var (
	customEncoder   = reflect.TypeFor[msgpack.CustomEncoder]()
	customDecoder   = reflect.TypeFor[msgpack.CustomDecoder]()
	marshaler       = reflect.TypeFor[msgpack.Marshaler]()
	unmarshaler     = reflect.TypeFor[msgpack.Unmarshaler]()
	binaryMarshaler = reflect.TypeFor[interface{ MarshalBinary() ([]byte, error) }]()
	textMarshaler   = reflect.TypeFor[interface{ MarshalText() ([]byte, error) }]()
)

// isPlain reports whether every value of t survives an encode and decode
// equal and unshared: booleans, numbers, strings, and arrays and structs
// of them whose fields are all exported and encoded, with no custom
// encoding. For such a type a live step's value is exactly what replay
// decodes, so the engine returns it without decoding it again. Anything
// holding a pointer, slice, map, interface or time goes through the
// journal's round trip instead, so the workflow sees the same value live
// and on replay, unshared with the step.
func isPlain(t reflect.Type, depth int) bool {
	if depth > 8 {
		return false
	}
	for _, m := range []reflect.Type{customEncoder, customDecoder, marshaler, unmarshaler, binaryMarshaler, textMarshaler} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return false
		}
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.String:
		return true
	case reflect.Array:
		return isPlain(t.Elem(), depth+1)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || !encodedField(f) || f.Anonymous || !isPlain(f.Type, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

func typeMayCycle(t reflect.Type, visiting map[reflect.Type]bool) bool {
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map, reflect.Struct:
	default:
		return false
	}
	if visiting[t] {
		return true // the type reaches itself
	}
	visiting[t] = true
	defer delete(visiting, t)
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return typeMayCycle(t.Elem(), visiting)
	case reflect.Map:
		return typeMayCycle(t.Key(), visiting) || typeMayCycle(t.Elem(), visiting)
	case reflect.Struct:
		for i := range t.NumField() {
			if encodedField(t.Field(i)) && typeMayCycle(t.Field(i).Type, visiting) {
				return true
			}
		}
	}
	return false
}

type walker struct {
	onPath map[pathKey]bool
}

// pathKey identifies a node by address and type: a slice and a pointer to
// its first element share an address but are different nodes.
type pathKey struct {
	p uintptr
	t reflect.Type
}

func (w *walker) walk(v reflect.Value, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("value is nested more than %d levels deep", maxDepth)
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return w.walk(v.Elem(), depth+1)
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if v.IsNil() {
			return nil
		}
		p := v.Pointer()
		if v.Kind() == reflect.Slice && v.Len() == 0 {
			return nil
		}
		k := pathKey{p, v.Type()}
		if w.onPath[k] {
			return errCycle
		}
		w.onPath[k] = true
		defer delete(w.onPath, k)
		switch v.Kind() {
		case reflect.Pointer:
			return w.walk(v.Elem(), depth+1)
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				if err := w.walk(it.Key(), depth+1); err != nil {
					return err
				}
				if err := w.walk(it.Value(), depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		return w.walkElems(v, depth)
	case reflect.Array:
		return w.walkElems(v, depth)
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if !encodedField(t.Field(i)) {
				continue
			}
			if err := w.walk(v.Field(i), depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// encodedField reports whether msgpack encodes field f.
func encodedField(f reflect.StructField) bool {
	if !f.IsExported() && !f.Anonymous {
		return false
	}
	tag, ok := f.Tag.Lookup("msgpack")
	if !ok {
		tag = f.Tag.Get("json")
	}
	return tag != "-"
}

func (w *walker) walkElems(v reflect.Value, depth int) error {
	if !mayCycle(v.Type().Elem()) {
		return nil
	}
	for i := range v.Len() {
		if err := w.walk(v.Index(i), depth+1); err != nil {
			return err
		}
	}
	return nil
}
