package durable

import (
	"math"
	"reflect"
	"testing"
)

type inner struct {
	A [3]int8
	B [4]byte
	F float32
}

type value struct {
	ID      int
	Name    string `json:"name"`
	Opt     uint16 `msgpack:"opt,omitempty"`
	Neg     int64
	Big     uint64
	Ratio   float64
	OK      bool
	Inner   inner
	Unicode string
}

// TestPlainCodecMatchesLibrary: what the plain codec writes, the library
// reads back equal, and what the library writes, the plain codec reads
// back equal (or hands to the library).
func TestPlainCodecMatchesLibrary(t *testing.T) {
	t.Parallel()
	values := []value{
		{},
		{ID: 1, Name: "x", Opt: 7, Neg: -1, Big: 1, Ratio: 0.5, OK: true, Inner: inner{A: [3]int8{-128, 0, 127}, B: [4]byte{1, 2, 3, 255}, F: 1.5}, Unicode: "é☃"},
		{ID: math.MinInt64, Neg: math.MaxInt64, Big: math.MaxUint64, Ratio: math.Inf(-1), Name: string(make([]byte, 70000))},
		{ID: -33, Neg: -129, Big: 256, Opt: math.MaxUint16, Name: string(make([]byte, 31))},
	}
	ti := infoOfType(reflect.TypeFor[value]())
	if ti.plan == nil {
		t.Fatal("value is not plain")
	}
	for i, v := range values {
		ours, err := encodePayload(v, 0)
		if err != nil {
			t.Fatal(err)
		}
		var fromOurs value
		if err := unmarshal(ours, &fromOurs); err != nil || fromOurs != v {
			t.Errorf("value %d: the library reads our encoding as %+v, %v; want %+v", i, fromOurs, err, v)
		}
		theirs, err := encode(v) // the library, configured as the engine uses it
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{ours, theirs} {
			var got value
			if err := decodeTyped(b, &got, 0); err != nil || got != v {
				t.Errorf("value %d: decodeTyped = %+v, %v; want %+v", i, got, err, v)
			}
		}
	}
}

// TestPlainCodecFallsBack: input the plain codec does not expect (an
// unknown field, an integer too large for the field, a nil) decodes as
// the library decodes it.
func TestPlainCodecFallsBack(t *testing.T) {
	t.Parallel()
	type wider struct {
		ID    int
		Extra string
	}
	type small struct{ ID int8 }
	b, _ := encode(wider{ID: 5, Extra: "x"})
	var v small
	if err := decodeTyped(b, &v, 0); err != nil || v.ID != 5 {
		t.Errorf("unknown field: %+v, %v; want ID 5 (the library skips the field)", v, err)
	}
	b, _ = encode(wider{ID: 300})
	var want, got small
	wantErr := unmarshal(b, &want)
	gotErr := decodeTyped(b, &got, 0)
	if got != want || (wantErr == nil) != (gotErr == nil) {
		t.Errorf("overflow: got %+v, %v; the library gives %+v, %v", got, gotErr, want, wantErr)
	}
	var n int
	if err := decodeTyped([]byte{0xc0}, &n, 0); err != nil || n != 0 {
		t.Errorf("nil into int: %v, %v; want 0, nil as the library does", n, err)
	}
	if err := decodeTyped([]byte{0xcd, 0x01}, &n, 0); err == nil {
		t.Errorf("truncated input decoded without error")
	}
}

func FuzzPlainCodec(f *testing.F) {
	for _, v := range []value{{}, {ID: 1, Name: "a", Inner: inner{F: 2}}} {
		b, _ := encode(v)
		f.Add(b)
		b, _ = encodePayload(v, 0)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ours, theirs value
		errOurs := decodeTyped(b, &ours, 0)
		errTheirs := unmarshal(b, &theirs)
		if errOurs == nil && errTheirs == nil && !reflect.DeepEqual(ours, theirs) && !(math.IsNaN(ours.Ratio) || math.IsNaN(float64(ours.Inner.F))) {
			t.Fatalf("decodeTyped = %+v; the library gives %+v", ours, theirs)
		}
	})
}
