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
//	run v4:  the 16 fields of v3, then idle bool (Run.Idle)
//	run v5:  the 17 fields of v4, then queue str, priority int,
//	         queueSeq uint, queued bool, dedup str (queue.go)
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
	runVersion4   = 4
	runVersion5   = 5
	headerSize    = 5

	recordFields  = 5
	runFields     = 14
	runFieldsV2   = 15
	runFieldsV3   = 16
	runFieldsV4   = 17
	runFieldsV5   = 22
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
	d := newDecoder(body, arena)
	d.array(recordFields)
	r.Kind = uint8(d.Uint(math.MaxUint8))
	r.Flags = uint8(d.Uint(math.MaxUint8))
	r.Name = d.strLike(prev)
	r.Time = fromUnixNano(d.Int())
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
	if r.Idle {
		fields = runFieldsV4 // only idle runs: the others stay as before
	}
	if r.Queue != "" || r.DedupKey != "" {
		fields = runFieldsV5 // only runs on a queue or with a dedup key
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
	if fields >= runFieldsV3 {
		buf = msgp.AppendArrayHeader(buf, len(r.Builds))
		for _, b := range r.Builds {
			buf = msgp.AppendString(buf, b)
		}
	}
	if fields >= runFieldsV4 {
		buf = msgp.AppendBool(buf, r.Idle)
	}
	if fields >= runFieldsV5 {
		buf = msgp.AppendString(buf, r.Queue)
		buf = msgp.AppendInt(buf, int64(r.Priority))
		buf = msgp.AppendUint(buf, r.QueueSeq)
		buf = msgp.AppendBool(buf, r.Queued)
		buf = msgp.AppendString(buf, r.DedupKey)
	}
	if fields > runFields {
		seal(buf, []byte(r.ID), nil)
		buf[0] = byte(runVersion2 + fields - runFieldsV2) // the checksum does not cover the version byte
		if fields == runFieldsV5 {
			buf[0] = runVersion5 // five fields more than v4, one version
		}
		return buf
	}
	return seal(buf, []byte(r.ID), nil)
}

func decodeRun(id string, v []byte) (Run, error) {
	r := Run{ID: id}
	body, err := openVersions(v, []byte(id), nil, id, "run", runVersion5)
	if err != nil {
		return r, err
	}
	d := newDecoder(body, nil)
	fields := runFields
	switch v[0] {
	case runVersion2:
		fields = runFieldsV2
	case runVersion3:
		fields = runFieldsV3
	case runVersion4:
		fields = runFieldsV4
	case runVersion5:
		fields = runFieldsV5
	}
	d.array(fields)
	r.Workflow = d.str()
	r.Status = Status(d.Uint(math.MaxUint8))
	r.Parent = d.str()
	r.ParentPos = uint32(d.Uint(math.MaxUint32))
	r.Epoch = uint32(d.Uint(math.MaxUint32))
	r.Input = d.bin()
	r.Output = d.bin()
	r.Err = d.bin()
	r.CreatedAt = fromUnixNano(d.Int())
	r.UpdatedAt = fromUnixNano(d.Int())
	r.WakeAt = fromUnixNano(d.Int())
	r.Deadline = fromUnixNano(d.Int())
	r.CancelRequested = d.Bool()
	r.ParentEpoch = uint32(d.Uint(math.MaxUint32))
	if fields >= runFieldsV2 {
		r.Meta = d.bin()
	}
	if fields >= runFieldsV3 {
		n := d.ArrayLen()
		if n > MaxBuilds {
			d.Fail("more than MaxBuilds builds")
		}
		for i := 0; i < n && !d.Failed(); i++ {
			r.Builds = append(r.Builds, d.str())
		}
	}
	if fields >= runFieldsV4 {
		r.Idle = d.Bool()
	}
	if fields >= runFieldsV5 {
		r.Queue = d.str()
		r.Priority = int32(d.Int())
		r.QueueSeq = d.Uint(math.MaxUint64)
		r.Queued = d.Bool()
		r.DedupKey = d.str()
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
	d := newDecoder(body, nil)
	d.array(messageFields)
	m.Data = d.bin()
	m.SentAt = fromUnixNano(d.Int())
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

// decoder reads the msgpack subset the format uses, with msgp.Reader:
// the first problem sticks and later reads return zero values.
type decoder struct {
	msgp.Reader
	arena *[]byte // if set, bin copies into its spare capacity when it fits
}

func newDecoder(b []byte, arena *[]byte) decoder {
	return decoder{Reader: msgp.NewReader(b), arena: arena}
}

// array reads an array header that must have want elements.
func (d *decoder) array(want int) {
	if n := d.ArrayLen(); !d.Failed() && n != want {
		d.Fail("array of " + strconv.Itoa(n) + " fields, want " + strconv.Itoa(want))
	}
}

func (d *decoder) str() string { return d.strLike("") }

// strLike decodes a string, returning like itself if the bytes are equal.
func (d *decoder) strLike(like string) string {
	p := d.Str()
	if string(p) == like {
		return like
	}
	return string(p)
}

// bin decodes a bin (nil for a msgpack nil) into memory of its own.
func (d *decoder) bin() []byte {
	if d.Peek() == 0xc0 {
		d.Code()
		return nil
	}
	p := d.Take(d.BinLen())
	if p == nil {
		return nil
	}
	n := len(p)
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

// finish checks that the value was read whole and well.
func (d *decoder) finish(runID, what string) error {
	if !d.Failed() && d.Len() != 0 {
		d.Fail(strconv.Itoa(d.Len()) + " trailing bytes")
	}
	if d.Failed() {
		return corruptf(runID, what, "%s", d.Problem())
	}
	return nil
}
