// Package msgp writes and reads the parts of msgpack (https://msgpack.org)
// that the journal's record format and the engine's plain codec handle by
// hand: headers, integers in their smallest form, strings, binary,
// booleans and floats. Each Append function appends to b and returns the
// extended slice; a [Reader] reads them back.
package msgp

import (
	"encoding/binary"
	"math"
)

// AppendArrayHeader appends the header of an array of n elements.
func AppendArrayHeader(b []byte, n int) []byte { return appendLen(b, n, 0x90, 16, 0, 0xdc, 0xdd) }

// AppendMapHeader appends the header of a map of n pairs.
func AppendMapHeader(b []byte, n int) []byte { return appendLen(b, n, 0x80, 16, 0, 0xde, 0xdf) }

// AppendUint appends n in the smallest unsigned form.
func AppendUint(b []byte, n uint64) []byte {
	switch {
	case n <= 0x7f:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
}

// AppendInt appends n in the smallest form: unsigned if it is not
// negative.
func AppendInt(b []byte, n int64) []byte {
	if n >= 0 {
		return AppendUint(b, uint64(n))
	}
	switch {
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
}

// AppendString appends s as a msgpack str.
func AppendString(b []byte, s string) []byte {
	return append(appendLen(b, len(s), 0xa0, 32, 0xd9, 0xda, 0xdb), s...)
}

// AppendBinHeader appends the header of a bin of n bytes.
func AppendBinHeader(b []byte, n int) []byte { return appendLen(b, n, 0, 0, 0xc4, 0xc5, 0xc6) }

// AppendBin appends p as a msgpack bin, or nil if p is nil.
func AppendBin(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, 0xc0)
	}
	return append(AppendBinHeader(b, len(p)), p...)
}

// AppendBool appends v.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

// AppendFloat32 appends f as a float 32.
func AppendFloat32(b []byte, f float32) []byte {
	return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(f))
}

// AppendFloat64 appends f as a float 64.
func AppendFloat64(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

// appendLen appends a length: fix|n when fix is set and n < fixMax, else
// the 8-bit form (when c8 is set), the 16-bit or the 32-bit one.
func appendLen(b []byte, n int, fix byte, fixMax int, c8, c16, c32 byte) []byte {
	switch {
	case fix != 0 && n < fixMax:
		return append(b, fix|byte(n))
	case c8 != 0 && n <= math.MaxUint8:
		return append(b, c8, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, c32), uint32(n))
}
