package torture

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/durable-go/durable"
)

// OpKind says what an [Op] does.
type OpKind uint8

// Operations of a plan.
const (
	OpStep   OpKind = iota + 1 // a step; fails its first Fails attempts, retried after Backoff
	OpFail                     // a step that fails permanently; the run fails with it
	OpSleep                    // durable.Sleep(D)
	OpNow                      // durable.Now
	OpRecv                     // N messages received on channel Name
	OpFan                      // N steps with durable.Go, then AwaitAll
	OpChild                    // RunChild of Child under ChildID
	OpSelect                   // AwaitAny: Variant 0 future vs 1h timer, 1 timer (D) vs silent channel, 2 1h timer vs a message on Name
	OpCancel                   // step, wait for cancellation (Variant 0 sleep, 1 receive, 2 child), cleanup step; ends the run
	OpWait                     // sleep an hour (a child that its parent's cancellation ends)
)

// Op is one operation of a [Plan].
type Op struct {
	Kind    OpKind        `json:"k"`
	Name    string        `json:"n,omitempty"` // step name or channel
	Fails   int           `json:"f,omitempty"` // attempts that fail before the step succeeds
	N       int           `json:"c,omitempty"` // messages; fan-out width
	D       time.Duration `json:"d,omitempty"` // sleep or timer; a step's work
	Backoff time.Duration `json:"b,omitempty"` // between attempts
	Variant int           `json:"v,omitempty"`
	ChildID string        `json:"i,omitempty"`
	Child   *Plan         `json:"p,omitempty"`
}

// Plan is the input of the torture workflow: what the run does, in order.
// With Epochs > 1 the run does its operations once per epoch, continuing
// as new after each but the last (names, channels and child ids get the
// epoch's prefix, see epochOps), and returns the epochs' results joined by
// " | ".
type Plan struct {
	Ops    []Op     `json:"o"`
	Epochs int      `json:"e,omitempty"`
	Done   []string `json:"r,omitempty"` // results of the epochs before this one
}

// epochOps returns the operations of epoch e: p.Ops, renamed so that no
// two epochs share a step name, a channel or a child id.
func (p Plan) epochOps(e int) []Op {
	if p.Epochs <= 1 {
		return p.Ops
	}
	ops := make([]Op, len(p.Ops))
	for i, op := range p.Ops {
		if op.Name != "" {
			op.Name = fmt.Sprintf("e%d.%s", e, op.Name)
		}
		if op.ChildID != "" {
			op.ChildID = fmt.Sprintf("%s.e%d", op.ChildID, e)
		}
		ops[i] = op
	}
	return ops
}

// epochs returns the number of epochs of p: at least 1.
func (p Plan) epochs() int { return max(p.Epochs, 1) }

// RunSpec is a top-level run of a round.
type RunSpec struct {
	ID       string
	Plan     Plan
	Cancel   bool          // the harness cancels it
	Deadline time.Duration // > 0: started WithRunTimeout(Deadline)
}

// Message is one message the sender goroutine sends.
type Message struct {
	Run, Channel, Body string
	Epoch              int // the epoch of the run that receives it
}

// Round is the work of one round: its runs and the messages to send, in
// the order the sender sends them.
type Round struct {
	N        int
	Runs     []RunSpec
	Messages []Message
}

// Expect is what a run must end as.
type Expect struct {
	ID       string
	Parent   string
	Status   durable.Status
	Result   string // the result of a completed run
	ErrHas   string // a substring of a failed run's error
	Deadline bool   // canceled by its deadline (ErrDeadlineExceeded)
	Optional bool   // may not exist: a child that cancellation stopped before it started
	Steps    []StepExpect
	Messages []Message // to receive, once each
	Epochs   int       // the run's epochs (ContinueAsNew): at least 1
}

// StepExpect is a step the run executes, with the attempts it takes.
type StepExpect struct {
	Run, Name string
	Attempts  int
	Epoch     int
}

// Key is "run/name", the step's name in the effect log.
func (s StepExpect) Key() string { return s.Run + "/" + s.Name }

// runID is the id of run i of round n.
func runID(round, i int) string { return fmt.Sprintf("g%03d-r%02d", round, i) }

// MakeRound returns round n of the workload of seed, with runs top-level
// runs. It is a pure function: every process computes the same round.
func MakeRound(seed uint64, n, runs int) Round {
	r := Round{N: n}
	for i := range runs {
		rng := rand.New(rand.NewPCG(seed, uint64(n)<<20|uint64(i)))
		id := runID(n, i)
		spec := RunSpec{ID: id}
		switch x := rng.IntN(100); {
		case x < 10:
			spec.Cancel = true
			v := rng.IntN(3)
			op := Op{Kind: OpCancel, Variant: v}
			if v == 2 {
				op.ChildID = id + ".w"
				op.Child = &Plan{Ops: []Op{{Kind: OpWait}}}
			}
			spec.Plan.Ops = []Op{op}
		case x < 14:
			spec.Deadline = time.Duration(50+rng.IntN(200)) * time.Millisecond
			spec.Plan.Ops = []Op{{Kind: OpCancel, Variant: 0}}
		case x < 22:
			n := 1 + rng.IntN(3)
			for j := range n {
				spec.Plan.Ops = append(spec.Plan.Ops, stepOp(rng, j))
			}
			spec.Plan.Ops = append(spec.Plan.Ops, Op{Kind: OpFail, Name: fmt.Sprintf("s%02d", n), D: time.Millisecond})
		default:
			spec.Plan = mixedPlan(rng, id, 3+rng.IntN(6))
			if rng.IntN(6) == 0 {
				spec.Plan.Epochs = 2 + rng.IntN(2) // ContinueAsNew
			}
		}
		r.Runs = append(r.Runs, spec)
	}
	// The sender's order: each run's messages in plan order, runs
	// interleaved at random.
	var queues [][]Message
	for _, spec := range r.Runs {
		if ms := planMessages(spec.ID, spec.Plan); len(ms) > 0 {
			queues = append(queues, ms)
		}
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)<<20|0xfffff))
	for len(queues) > 0 {
		i := rng.IntN(len(queues))
		r.Messages = append(r.Messages, queues[i][0])
		if queues[i] = queues[i][1:]; len(queues[i]) == 0 {
			queues = append(queues[:i], queues[i+1:]...)
		}
	}
	return r
}

func stepOp(rng *rand.Rand, j int) Op {
	fails := 0
	switch x := rng.IntN(10); {
	case x < 2:
		fails = 1
	case x < 3:
		fails = 2
	}
	return Op{
		Kind:    OpStep,
		Name:    fmt.Sprintf("s%02d", j),
		Fails:   fails,
		D:       time.Duration(1+rng.IntN(4)) * time.Millisecond,
		Backoff: time.Duration(10+rng.IntN(41)) * time.Millisecond,
	}
}

func mixedPlan(rng *rand.Rand, id string, n int) Plan {
	var p Plan
	for j := range n {
		var op Op
		switch x := rng.IntN(100); {
		case x < 40:
			op = stepOp(rng, j)
		case x < 52:
			op = Op{Kind: OpSleep, D: time.Duration(10+rng.IntN(191)) * time.Millisecond}
		case x < 57:
			op = Op{Kind: OpNow}
		case x < 67:
			op = Op{Kind: OpRecv, Name: fmt.Sprintf("in%02d", j), N: 1 + rng.IntN(3)}
		case x < 77:
			op = stepOp(rng, j)
			op.Kind, op.Name, op.N = OpFan, fmt.Sprintf("f%02d", j), 2+rng.IntN(5)
			op.Fails = min(op.Fails, 1)
		case x < 87:
			child := Plan{}
			for k := range 1 + rng.IntN(3) {
				child.Ops = append(child.Ops, stepOp(rng, k))
			}
			if rng.IntN(2) == 0 {
				child.Ops = append(child.Ops, Op{Kind: OpSleep, D: time.Duration(10+rng.IntN(91)) * time.Millisecond})
			}
			op = Op{Kind: OpChild, ChildID: fmt.Sprintf("%s.c%02d", id, j), Child: &child}
		default:
			op = Op{Kind: OpSelect, Variant: rng.IntN(3), Name: fmt.Sprintf("x%02d", j)}
			if op.Variant == 1 {
				op.D = time.Duration(20+rng.IntN(41)) * time.Millisecond
			}
		}
		p.Ops = append(p.Ops, op)
	}
	return p
}

// body is the text of message k (from 1) on channel ch of run id. The
// brackets make it unique as a substring, so the checker can count it in
// the journal's bytes.
func body(id, ch string, k int) string { return fmt.Sprintf("<%s:%s:%d>", id, ch, k) }

func planMessages(id string, p Plan) []Message {
	var out []Message
	for e := range p.epochs() {
		for _, op := range p.epochOps(e) {
			switch {
			case op.Kind == OpRecv:
				for k := 1; k <= op.N; k++ {
					out = append(out, Message{Run: id, Channel: op.Name, Body: body(id, op.Name, k), Epoch: e})
				}
			case op.Kind == OpSelect && op.Variant == 2:
				out = append(out, Message{Run: id, Channel: op.Name, Body: body(id, op.Name, 1), Epoch: e})
			}
		}
	}
	return out
}

// stepValue is what step name of run id returns.
func stepValue(id, name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(id + "/" + name))
	return h.Sum32() & 0xffff
}

func stepToken(id, name string) string { return fmt.Sprintf("%s=%04x", name, stepValue(id, name)) }

// permanentMsg is the error of an OpFail step.
const permanentMsg = "planned permanent failure"

// Expected returns what every run of the round, children included, must
// end as: the reference execution, computed without executing anything.
func Expected(r Round) []Expect {
	var out []Expect
	for _, spec := range r.Runs {
		out = append(out, expect(spec.ID, "", spec.Plan, spec.Deadline > 0)...)
	}
	return out
}

// expect returns the expectations of run id with plan p, then those of
// its children.
func expect(id, parent string, p Plan, deadline bool) []Expect {
	x := Expect{ID: id, Parent: parent, Status: durable.StatusCompleted, Epochs: p.epochs()}
	var children []Expect
	var results []string
	for e := range p.epochs() {
		var toks []string
		cs := x.expectEpoch(e, p.epochOps(e), deadline, &toks)
		children = append(children, cs...)
		results = append(results, strings.Join(toks, " "))
		if x.Status != durable.StatusCompleted {
			break
		}
	}
	x.Messages = planMessages(id, p)
	if x.Status == durable.StatusCompleted {
		x.Result = strings.Join(results, " | ")
	}
	return append([]Expect{x}, children...)
}

// expectEpoch adds what epoch e of the run does to x and *toks, and
// returns the expectations of the children it starts.
func (x *Expect) expectEpoch(e int, ops []Op, deadline bool, ptoks *[]string) []Expect {
	id := x.ID
	var children []Expect
	toks := *ptoks
	defer func() { *ptoks = toks }()
	step := func(name string, attempts int) {
		x.Steps = append(x.Steps, StepExpect{Run: id, Name: name, Attempts: attempts, Epoch: e})
	}
ops:
	for _, op := range ops {
		switch op.Kind {
		case OpStep:
			step(op.Name, op.Fails+1)
			toks = append(toks, stepToken(id, op.Name))
		case OpFail:
			step(op.Name, 1)
			x.Status = durable.StatusFailed
			x.ErrHas = fmt.Sprintf("step %q failed after 1 attempt: %s", op.Name, permanentMsg)
			break ops
		case OpSleep:
			toks = append(toks, "z")
		case OpNow:
			toks = append(toks, "t")
		case OpRecv:
			for k := 1; k <= op.N; k++ {
				toks = append(toks, body(id, op.Name, k))
			}
		case OpFan:
			sum := 0
			for i := range op.N {
				name := fmt.Sprintf("%s.%d", op.Name, i)
				a := 1
				if i == 0 {
					a = op.Fails + 1
				}
				step(name, a)
				sum += int(stepValue(id, name))
			}
			toks = append(toks, fmt.Sprintf("%s=%d", op.Name, sum))
		case OpChild:
			cs := expect(op.ChildID, id, *op.Child, false)
			children = append(children, cs...)
			toks = append(toks, "child("+cs[0].Result+")")
		case OpSelect:
			switch op.Variant {
			case 0:
				step(op.Name, 1)
				toks = append(toks, "sel0:"+stepToken(id, op.Name))
			case 1:
				toks = append(toks, "sel1")
			case 2:
				toks = append(toks, "sel2:"+body(id, op.Name, 1))
			}
		case OpCancel:
			step("pre", 1)
			step("cleanup", 1)
			x.Status = durable.StatusCanceled
			x.Deadline = deadline
			if op.Variant == 2 {
				cs := expect(op.ChildID, id, *op.Child, false)
				cs[0].Optional = true
				children = append(children, cs...)
			}
			break ops
		case OpWait:
			x.Status = durable.StatusCanceled
			break ops
		}
	}
	return children
}
