package durable

import (
	"encoding/binary"
	"hash/fnv"
	"time"

	"github.com/durable-go/durable/backoff"
	"github.com/durable-go/durable/retry"
)

// retryPolicy is the step's policy with its jitter made reproducible when
// Config.RetrySeed is set: a backoff.Exponential without a Rand of its
// own (the default policy's among them) draws from the seed, the run id,
// the position and the attempt, so the same test gives the same backoff
// times on every run, whatever order concurrent steps fail in.
func (t *stepExec) retryPolicy() retry.Policy {
	p := t.policy
	seed := t.x.e.cfg.RetrySeed
	if seed == 0 {
		return p
	}
	var exp backoff.Exponential
	switch b := p.Backoff.(type) {
	case nil:
		// retry's documented default: 1s, ×2, capped at 1 minute, equal jitter.
		exp = backoff.Exponential{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: backoff.EqualJitter}
	case backoff.Exponential:
		exp = b
	case *backoff.Exponential:
		exp = *b
	default:
		return p
	}
	if exp.Rand != nil {
		return p
	}
	r := jitterDraw(seed, t.x.id, t.o.pos, t.attempt)
	exp.Rand = func() float64 { return r }
	p.Backoff = exp
	return p
}

// jitterDraw is a number in [0, 1) that depends only on its arguments.
func jitterDraw(seed uint64, runID string, pos uint32, attempt int) float64 {
	h := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	h.Write(b[:])
	h.Write([]byte(runID))
	binary.BigEndian.PutUint32(b[:4], pos)
	binary.BigEndian.PutUint32(b[4:], uint32(attempt))
	h.Write(b[:])
	return float64(h.Sum64()>>11) / (1 << 53)
}
