package durable

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
)

// JSON messages. A message sent as a json.RawMessage (what the web API's
// send endpoint does with a request body) is stored as its JSON text, in
// a msgpack extension value of type jsonExt, and decoded with
// encoding/json into the type the receiving code asks for: Receive[T],
// OnReceive[T]. So an operator can send a message in JSON without the
// engine knowing the receiving step's type, and T's json tags, time.Time
// fields and UnmarshalJSON methods apply as they would in any JSON API.
// On replay the recorded JSON is decoded the same way.

// jsonExt is the msgpack extension type of a JSON message.
const jsonExt = 'J'

// jsonHeader is the size of the header of a JSON message: ext32's code,
// length and type.
const jsonHeader = 6

var errNotJSON = errors.New("json.RawMessage is not valid JSON")

// encodeJSONMessage wraps the JSON text j as a payload.
func encodeJSONMessage(j json.RawMessage, limit int) ([]byte, error) {
	if !json.Valid(j) {
		return nil, &PayloadError{Op: "encode", Err: errNotJSON}
	}
	var c bytes.Buffer
	if err := json.Compact(&c, j); err != nil { // unreachable after Valid
		return nil, &PayloadError{Op: "encode", Err: err}
	}
	b := make([]byte, jsonHeader, jsonHeader+c.Len())
	b[0] = 0xc9 // ext32
	binary.BigEndian.PutUint32(b[1:5], uint32(c.Len()))
	b[5] = jsonExt
	b = append(b, c.Bytes()...)
	if limit > 0 && len(b) > limit {
		return nil, &PayloadError{Op: "encode", Size: len(b), Limit: limit}
	}
	return b, nil
}

// jsonMessage returns the JSON text of a payload that is a JSON message.
func jsonMessage(b []byte) ([]byte, bool) {
	if len(b) < jsonHeader || b[0] != 0xc9 || b[5] != jsonExt {
		return nil, false
	}
	if n := binary.BigEndian.Uint32(b[1:5]); int64(n) != int64(len(b)-jsonHeader) {
		return nil, false
	}
	return b[jsonHeader:], true
}
