package journal

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"strconv"
	"time"

	"github.com/durable-go/durable/internal/msgp"
)

// On-disk value layout, shared by records, runs and messages:
//
//	byte 0     format version (formatVersion)
//	bytes 1-4  CRC32C (Castagnoli), big-endian, over scope || body
//	bytes 5-   body: one msgpack array
//
// The scope is the value's identity (run id, and the key within the run),
// so a value that is intact but stored under the wrong key is caught too.
// Bodies are msgpack arrays of fixed length per version:
//
//	record:  [kind uint, flags uint, name str, time int, data bin|nil]
//	run:     [workflow str, status uint, parent str, parentPos uint,
//	          epoch uint, input bin|nil, output bin|nil, err bin|nil,
//	          created int, updated int, wake int, deadline int, cancel bool,
//	          parentEpoch uint]
//	run v2:  the 14 fields of v1, then meta bin (Run.Meta)
//	run v3:  the 15 fields of v2, then builds: an array of str (Run.Builds)
//	message: [data bin|nil, sentAt int]
//
// Times are Unix nanoseconds; 0 is the zero time.
//
// Version 2 exists for run values only and is written only for runs with
// Meta, so a journal whose runs carry none is byte for byte what version 1
// wrote; this code reads both.
const (
	formatVersion = 1
	runVersion2   = 2
	runVersion3   = 3
	headerSize    = 5

	recordFields  = 5
	runFields     = 14
	runFieldsV2   = 15
	runFieldsV3   = 16
	messageFields = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(scope1, scope2, body []byte) uint32 {
	c := crc32.Update(0, castagnoli, scope1)
	c = crc32.Update(c, castagnoli, scope2)
	return crc32.Update(c, castagnoli, body)
}

// seal fills the header of buf (whose body starts at headerSize).
func seal(buf, scope1, scope2 []byte) []byte {
	buf[0] = formatVersion
	binary.BigEndian.PutUint32(buf[1:5], checksum(scope1, scope2, buf[headerSize:]))
	return buf
}

// open checks the header of v and returns its body.
func open(v, scope1, scope2 []byte, runID, what string) ([]byte, error) {
	return openVersions(v, scope1, scope2, runID, what, formatVersion)
}

// openVersions is open for a value that may be of version max or below.
func openVersions(v, scope1, scope2 []byte, runID, what string, max byte) ([]byte, error) {
	if len(v) < headerSize {
		return nil, corruptf(runID, what, "value of %d bytes is shorter than its header", len(v))
	}
	if v[0] < formatVersion || v[0] > max {
		return nil, corruptf(runID, what, "unknown value version %d", v[0])
	}
	body := v[headerSize:]
	if want, got := binary.BigEndian.Uint32(v[1:5]), checksum(scope1, scope2, body); want != got {
		return nil, corruptf(runID, what, "checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	return body, nil
}

// recordKey is the 8-byte key of a record within its run's bucket:
// big-endian Pos then Seq, so byte order is position order.
func recordKey(pos, seq uint32) [8]byte {
	var k [8]byte
	binary.BigEndian.PutUint32(k[0:4], pos)
	binary.BigEndian.PutUint32(k[4:8], seq)
	return k
}

func encodeRecord(runID string, r *Record) []byte {
	buf := make([]byte, headerSize, headerSize+16+len(r.Name)+len(r.Data))
	buf = msgp.AppendArrayHeader(buf, recordFields)
	buf = msgp.AppendUint(buf, uint64(r.Kind))
	buf = msgp.AppendUint(buf, uint64(r.Flags))
	buf = msgp.AppendString(buf, r.Name)
	buf = msgp.AppendInt(buf, unixNano(r.Time))
	buf = msgp.AppendBin(buf, r.Data)
	k := recordKey(r.Pos, r.Seq)
	return seal(buf, []byte(runID), k[:])
}

func decodeRecord(runID string, key, v []byte) (Record, error) {
	return decodeRecordAfter(runID, key, v, "", nil)
}

// decodeRecordAfter is decodeRecord that reuses prev, the name of the
// record before, if the name is the same (no allocation for the repeated
// names of a loop of steps), and copies the data into arena's spare
// capacity when it fits (one allocation for a run's records, not one
// each). arena may be nil.
func decodeRecordAfter(runID string, key, v []byte, prev string, arena *[]byte) (Record, error) {
	var r Record
	if len(key) != 8 {
		return r, corruptf(runID, "record", "key of %d bytes, want 8", len(key))
	}
	r.Pos = binary.BigEndian.Uint32(key[0:4])
	r.Seq = binary.BigEndian.Uint32(key[4:8])
	body, err := open(v, []byte(runID), key, runID, "record")
	if err != nil {
		return r, recordErr(err, r)
	}
	d := decoder{b: body, arena: arena}
	d.array(recordFields)
	r.Kind = uint8(d.uint(math.MaxUint8))
	r.Flags = uint8(d.uint(math.MaxUint8))
	r.Name = d.strLike(prev)
	r.Time = fromUnixNano(d.int())
	r.Data = d.bin()
	if err := d.finish(runID, "record"); err != nil {
		return r, recordErr(err, r)
	}
	return r, nil
}

// recordErr names the record in a CorruptError (only when there is one:
// the name costs an allocation).
func recordErr(err error, r Record) error {
	if ce, ok := err.(*CorruptError); ok {
		ce.What = "record " + strconv.Itoa(int(r.Pos)) + "." + strconv.Itoa(int(r.Seq))
	}
	return err
}

func encodeRun(r *Run) []byte {
	buf := make([]byte, headerSize, headerSize+64+len(r.Workflow)+len(r.Parent)+len(r.Input)+len(r.Output)+len(r.Err)+len(r.Meta))
	fields := runFields
	if len(r.Meta) > 0 {
		fields = runFieldsV2
	}
	if len(r.Builds) > 0 {
		fields = runFieldsV3
	}
	buf = msgp.AppendArrayHeader(buf, fields)
	buf = msgp.AppendString(buf, r.Workflow)
	buf = msgp.AppendUint(buf, uint64(r.Status))
	buf = msgp.AppendString(buf, r.Parent)
	buf = msgp.AppendUint(buf, uint64(r.ParentPos))
	buf = msgp.AppendUint(buf, uint64(r.Epoch))
	buf = msgp.AppendBin(buf, r.Input)
	buf = msgp.AppendBin(buf, r.Output)
	buf = msgp.AppendBin(buf, r.Err)
	buf = msgp.AppendInt(buf, unixNano(r.CreatedAt))
	buf = msgp.AppendInt(buf, unixNano(r.UpdatedAt))
	buf = msgp.AppendInt(buf, unixNano(r.WakeAt))
	buf = msgp.AppendInt(buf, unixNano(r.Deadline))
	buf = msgp.AppendBool(buf, r.CancelRequested)
	buf = msgp.AppendUint(buf, uint64(r.ParentEpoch))
	if fields >= runFieldsV2 {
		buf = msgp.AppendBin(buf, r.Meta)
	}
	if fields == runFieldsV3 {
		buf = msgp.AppendArrayHeader(buf, len(r.Builds))
		for _, b := range r.Builds {
			buf = msgp.AppendString(buf, b)
		}
	}
	if fields > runFields {
		seal(buf, []byte(r.ID), nil)
		buf[0] = byte(runVersion2 + fields - runFieldsV2) // the checksum does not cover the version byte
		return buf
	}
	return seal(buf, []byte(r.ID), nil)
}

func decodeRun(id string, v []byte) (Run, error) {
	r := Run{ID: id}
	body, err := openVersions(v, []byte(id), nil, id, "run", runVersion3)
	if err != nil {
		return r, err
	}
	d := decoder{b: body}
	fields := runFields
	switch v[0] {
	case runVersion2:
		fields = runFieldsV2
	case runVersion3:
		fields = runFieldsV3
	}
	d.array(fields)
	r.Workflow = d.str()
	r.Status = Status(d.uint(math.MaxUint8))
	r.Parent = d.str()
	r.ParentPos = uint32(d.uint(math.MaxUint32))
	r.Epoch = uint32(d.uint(math.MaxUint32))
	r.Input = d.bin()
	r.Output = d.bin()
	r.Err = d.bin()
	r.CreatedAt = fromUnixNano(d.int())
	r.UpdatedAt = fromUnixNano(d.int())
	r.WakeAt = fromUnixNano(d.int())
	r.Deadline = fromUnixNano(d.int())
	r.CancelRequested = d.bool()
	r.ParentEpoch = uint32(d.uint(math.MaxUint32))
	if fields >= runFieldsV2 {
		r.Meta = d.bin()
	}
	if fields == runFieldsV3 {
		n := d.arrayLen()
		if n > MaxBuilds {
			d.fail("more than MaxBuilds builds")
		}
		for i := 0; i < n && d.err == ""; i++ {
			r.Builds = append(r.Builds, d.str())
		}
	}
	if err := d.finish(id, "run"); err != nil {
		return r, err
	}
	if !r.Status.valid() {
		return r, corruptf(id, "run", "invalid status %d", r.Status)
	}
	return r, nil
}

// messageKey is channel, a 0 byte, then the big-endian sequence number, so
// one channel's messages are contiguous and in send order.
func messageKey(channel string, seq uint64) []byte {
	k := make([]byte, 0, len(channel)+9)
	k = append(k, channel...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func encodeMessage(m *Message) []byte {
	buf := make([]byte, headerSize, headerSize+16+len(m.Data))
	buf = msgp.AppendArrayHeader(buf, messageFields)
	buf = msgp.AppendBin(buf, m.Data)
	buf = msgp.AppendInt(buf, unixNano(m.SentAt))
	return seal(buf, []byte(m.RunID), messageKey(m.Channel, m.Seq))
}

func decodeMessage(runID string, key, v []byte) (Message, error) {
	m := Message{RunID: runID}
	if len(key) < 9 || key[len(key)-9] != 0 {
		return m, corruptf(runID, "message", "malformed key %x", key)
	}
	m.Channel = string(key[:len(key)-9])
	m.Seq = binary.BigEndian.Uint64(key[len(key)-8:])
	body, err := open(v, []byte(runID), key, runID, "message")
	if err != nil {
		return m, err
	}
	d := decoder{b: body}
	d.array(messageFields)
	m.Data = d.bin()
	m.SentAt = fromUnixNano(d.int())
	return m, d.finish(runID, "message")
}

// The times the format can hold: Unix nanoseconds in an int64. Times
// outside are clamped; a non-zero time at exactly the Unix epoch is stored
// one nanosecond later, since 0 means the zero time.
var (
	minTime = time.Unix(0, math.MinInt64+1)
	maxTime = time.Unix(0, math.MaxInt64)
)

func unixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minTime):
		return minTime.UnixNano()
	case t.After(maxTime):
		return maxTime.UnixNano()
	}
	if n := t.UnixNano(); n != 0 {
		return n
	}
	return 1
}

// normTime is t as it reads back from the journal.
func normTime(t time.Time) time.Time { return fromUnixNano(unixNano(t)) }

func fromUnixNano(n int64) time.Time {
	switch n {
	case 0:
		return time.Time{}
	case math.MinInt64: // never written (see unixNano): read it as minTime, so it writes back the same
		n++
	}
	return time.Unix(0, n).UTC()
}

// Values are written with internal/msgp, by hand: no reflection, no
// allocation beyond the output buffer.

// decoder reads the msgpack subset the format uses. The first problem sticks in err;
// later calls return zero values. Lengths are checked against the bytes
// that remain before anything is allocated.
type decoder struct {
	b     []byte
	err   string
	arena *[]byte // if set, bin copies into its spare capacity when it fits
}

func (d *decoder) fail(msg string) {
	if d.err == "" {
		d.err = msg
	}
	d.b = nil
}

func (d *decoder) take(n int) []byte {
	if d.err != "" {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail("truncated value: need " + strconv.Itoa(n) + " bytes, have " + strconv.Itoa(len(d.b)))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) code() byte {
	p := d.take(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (d *decoder) array(want int) {
	if n := d.arrayLen(); d.err == "" && n != want {
		d.fail("array of " + strconv.Itoa(n) + " fields, want " + strconv.Itoa(want))
	}
}

// arrayLen reads an array header and returns its length.
func (d *decoder) arrayLen() int {
	c := d.code()
	n := -1
	switch {
	case c&0xf0 == 0x90:
		n = int(c & 0x0f)
	case c == 0xdc:
		if p := d.take(2); p != nil {
			n = int(binary.BigEndian.Uint16(p))
		}
	case c == 0xdd:
		if p := d.take(4); p != nil {
			n = int(binary.BigEndian.Uint32(p))
		}
	}
	if d.err == "" && n < 0 {
		d.fail("not an array")
	}
	return n
}

func (d *decoder) uint(max uint64) uint64 {
	c := d.code()
	var n uint64
	switch {
	case d.err != "":
		return 0
	case c < 0x80:
		n = uint64(c)
	case c == 0xcc:
		if p := d.take(1); p != nil {
			n = uint64(p[0])
		}
	case c == 0xcd:
		if p := d.take(2); p != nil {
			n = uint64(binary.BigEndian.Uint16(p))
		}
	case c == 0xce:
		if p := d.take(4); p != nil {
			n = uint64(binary.BigEndian.Uint32(p))
		}
	case c == 0xcf:
		if p := d.take(8); p != nil {
			n = binary.BigEndian.Uint64(p)
		}
	default:
		d.fail("expected an unsigned integer")
		return 0
	}
	if n > max {
		d.fail("integer out of range")
		return 0
	}
	return n
}

func (d *decoder) int() int64 {
	if d.err != "" || len(d.b) == 0 {
		d.take(1)
		return 0
	}
	c := d.b[0]
	switch {
	case c < 0x80 || (c >= 0xcc && c <= 0xcf):
		return int64(d.uint(math.MaxInt64))
	case c >= 0xe0:
		d.take(1)
		return int64(int8(c))
	}
	d.take(1)
	switch c {
	case 0xd0:
		if p := d.take(1); p != nil {
			return int64(int8(p[0]))
		}
	case 0xd1:
		if p := d.take(2); p != nil {
			return int64(int16(binary.BigEndian.Uint16(p)))
		}
	case 0xd2:
		if p := d.take(4); p != nil {
			return int64(int32(binary.BigEndian.Uint32(p)))
		}
	case 0xd3:
		if p := d.take(8); p != nil {
			return int64(binary.BigEndian.Uint64(p))
		}
	default:
		d.fail("expected an integer")
	}
	return 0
}

func (d *decoder) length(c byte, fix, c8, c16, c32 byte, fixMask byte) int {
	switch {
	case fixMask != 0 && c&^fixMask == fix:
		return int(c & fixMask)
	case c == c8:
		if p := d.take(1); p != nil {
			return int(p[0])
		}
	case c == c16:
		if p := d.take(2); p != nil {
			return int(binary.BigEndian.Uint16(p))
		}
	case c == c32:
		if p := d.take(4); p != nil {
			return int(binary.BigEndian.Uint32(p))
		}
	default:
		d.fail("unexpected type code")
	}
	return 0
}

func (d *decoder) str() string { return d.strLike("") }

// strLike decodes a string, returning like itself if the bytes are equal.
func (d *decoder) strLike(like string) string {
	c := d.code()
	if d.err != "" {
		return ""
	}
	n := d.length(c, 0xa0, 0xd9, 0xda, 0xdb, 0x1f)
	p := d.take(n)
	if string(p) == like {
		return like
	}
	return string(p)
}

func (d *decoder) bin() []byte {
	c := d.code()
	if d.err != "" || c == 0xc0 {
		return nil
	}
	n := d.length(c, 0, 0xc4, 0xc5, 0xc6, 0)
	p := d.take(n)
	if p == nil {
		return nil
	}
	if d.arena != nil && n <= cap(*d.arena)-len(*d.arena) {
		a := *d.arena
		start := len(a)
		a = append(a, p...)
		*d.arena = a
		return a[start:len(a):len(a)]
	}
	out := make([]byte, n)
	copy(out, p)
	return out
}

func (d *decoder) bool() bool {
	switch d.code() {
	case 0xc3:
		return true
	case 0xc2:
		return false
	}
	d.fail("expected a bool")
	return false
}

func (d *decoder) finish(runID, what string) error {
	if d.err == "" && len(d.b) != 0 {
		d.fail(strconv.Itoa(len(d.b)) + " trailing bytes")
	}
	if d.err != "" {
		return corruptf(runID, what, "%s", d.err)
	}
	return nil
}
