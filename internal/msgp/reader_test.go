package msgp_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/durable-go/durable/internal/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// What the Append functions write, the Reader reads back.
func TestReaderReadsWhatAppendWrites(t *testing.T) {
	t.Parallel()
	ints := []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64}
	for _, n := range ints {
		r := msgp.NewReader(msgp.AppendInt(nil, n))
		if got := r.Int(); r.Failed() || got != n || r.Len() != 0 {
			t.Errorf("Int of %d = %d (%q, %d left)", n, got, r.Problem(), r.Len())
		}
	}
	for _, n := range []uint64{0, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxUint64} {
		r := msgp.NewReader(msgp.AppendUint(nil, n))
		if got := r.Uint(math.MaxUint64); r.Failed() || got != n {
			t.Errorf("Uint of %d = %d (%q)", n, got, r.Problem())
		}
	}
	for _, n := range []int{0, 15, 16, 31, 32, 255, 256, 65535, 65536} {
		s := string(bytes.Repeat([]byte("x"), n))
		var b []byte
		b = msgp.AppendString(b, s)
		b = msgp.AppendBin(b, []byte(s))
		b = msgp.AppendArrayHeader(b, n)
		b = msgp.AppendMapHeader(b, n)
		r := msgp.NewReader(b)
		if got := string(r.Str()); got != s {
			t.Errorf("Str of %d bytes: got %d bytes", n, len(got))
		}
		if got := r.Take(r.BinLen()); string(got) != s {
			t.Errorf("bin of %d bytes: got %d bytes", n, len(got))
		}
		if got := r.ArrayLen(); got != n {
			t.Errorf("ArrayLen = %d, want %d", got, n)
		}
		if got := r.MapLen(); got != n {
			t.Errorf("MapLen = %d, want %d", got, n)
		}
		if r.Failed() || r.Len() != 0 {
			t.Errorf("%d: %q, %d left", n, r.Problem(), r.Len())
		}
	}
	var b []byte
	b = msgp.AppendBool(b, true)
	b = msgp.AppendBool(b, false)
	b = msgp.AppendFloat32(b, 1.5)
	b = msgp.AppendFloat32(b, 2.5)
	r := msgp.NewReader(b)
	if !r.Bool() || r.Bool() || r.Float32() != 1.5 || r.Float64() != 2.5 || r.Failed() {
		t.Errorf("bool and floats: %q", r.Problem())
	}
}

// The first problem sticks, is described, and stops every later read.
func TestReaderFailsOnce(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		b    []byte
		read func(r *msgp.Reader)
		want string
	}{
		{"truncated str", []byte{0xa5, 'a', 'b'}, func(r *msgp.Reader) { r.Str() }, "truncated value: need 5 bytes, have 2"},
		{"str32 past the end", []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, func(r *msgp.Reader) { r.Str() }, "truncated value"},
		{"not an int", []byte{0xc3}, func(r *msgp.Reader) { r.Int() }, "expected an integer"},
		{"negative as uint", []byte{0xff}, func(r *msgp.Reader) { r.Uint(math.MaxUint64) }, "integer out of range"},
		{"uint past max", []byte{0xcc, 200}, func(r *msgp.Reader) { r.Uint(100) }, "integer out of range"},
		{"uint64 as int", []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, func(r *msgp.Reader) { r.Int() }, "integer out of range"},
		{"not a bool", []byte{0x01}, func(r *msgp.Reader) { r.Bool() }, "expected a bool"},
		{"not an array", []byte{0x81}, func(r *msgp.Reader) { r.ArrayLen() }, "unexpected type code 0x81"},
		{"empty", nil, func(r *msgp.Reader) { r.Code() }, "truncated value: need 1 bytes, have 0"},
		{"array count past the end", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, func(r *msgp.Reader) { r.Skip(10) }, "runs past the end"},
		{"too deep", bytes.Repeat([]byte{0x91}, 20), func(r *msgp.Reader) { r.Skip(10) }, "values nest deeper than 10"},
		{"never used code", []byte{0xc1}, func(r *msgp.Reader) { r.Skip(10) }, "unexpected type code 0xc1"},
	}
	for _, tc := range cases {
		r := msgp.NewReader(tc.b)
		tc.read(&r)
		if !r.Failed() || !bytes.Contains([]byte(r.Problem()), []byte(tc.want)) {
			t.Errorf("%s: problem %q, want %q", tc.name, r.Problem(), tc.want)
		}
		first := r.Problem()
		if r.Int() != 0 || r.Str() != nil || r.Len() != 0 || r.Problem() != first {
			t.Errorf("%s: reads after the failure changed something: %q", tc.name, r.Problem())
		}
	}
}

// Skip walks exactly one value of any kind the library writes.
func TestReaderSkipsLibraryValues(t *testing.T) {
	t.Parallel()
	values := []any{nil, true, 1, -1, 1 << 40, 1.5, float32(2.5), "s", []byte{1, 2},
		[]any{1, "a", []any{map[string]any{"k": []int{1, 2, 3}}}}, map[string]any{"a": 1, "b": "c"},
		bytes.Repeat([]byte{7}, 70000), string(bytes.Repeat([]byte{'x'}, 300))}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, 0x2a) // a second value after it
		r := msgp.NewReader(b)
		r.Skip(100)
		if r.Failed() || r.Len() != 1 {
			t.Errorf("Skip(%T) left %d bytes: %q", v, r.Len(), r.Problem())
		}
	}
}

// A Reader never panics and never reads past the end, whatever the bytes;
// what it accepts as a whole value, msgpack accepts too.
func FuzzReader(f *testing.F) {
	for _, v := range []any{nil, 1, -300, "str", []byte{1}, []any{1, []any{"x"}}, map[string]any{"k": 1.5}} {
		b, _ := msgpack.Marshal(v)
		f.Add(b)
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := msgp.NewReader(b)
		r.Skip(50)
		if !r.Failed() {
			if err := msgpack.NewDecoder(bytes.NewReader(b[:len(b)-r.Len()])).Skip(); err != nil {
				t.Fatalf("Skip accepted % x, msgpack does not: %v", b[:len(b)-r.Len()], err)
			}
		}
		for _, read := range []func(r *msgp.Reader){
			func(r *msgp.Reader) { r.Int() },
			func(r *msgp.Reader) { r.Uint(math.MaxUint64) },
			func(r *msgp.Reader) { r.Str() },
			func(r *msgp.Reader) { r.Take(r.BinLen()) },
			func(r *msgp.Reader) { r.ArrayLen(); r.MapLen() },
			func(r *msgp.Reader) { r.Bool(); r.Float64() },
		} {
			r := msgp.NewReader(b)
			for !r.Failed() && r.Len() > 0 {
				before := r.Len()
				read(&r)
				if !r.Failed() && r.Len() >= before && before > 0 {
					t.Fatalf("a read consumed nothing of % x", b)
				}
			}
		}
	})
}
