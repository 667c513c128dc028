package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/durable-go/durable/journal"
	"github.com/jackc/pgx/v5"
)

// groupTx is one group's transaction as the batch rules see it (a
// journal.Tx): the rows its requests touch, locked and read once up
// front, and the writes the rules make, kept in memory until flush sends
// them as a few multi-row statements. Reads it did not prefetch go to the
// database (through the same transaction), so it is exact either way.
type groupTx struct {
	ctx   context.Context
	q     *queries
	tx    *pgx.Conn // in a transaction that prefetch begins and flush commits
	err   error     // the first database error; the group fails with it
	bytes int       // the size of the values flush writes
	xid   int64     // the transaction's id, to ask txid_status after a lost COMMIT

	// spec: reads are answered from cache (runcache.go) and the group is
	// committed in one round trip (fastcommit.go); guarded lists the runs
	// so read, which the guard statement checks. specFailed: a read the
	// cache could not answer; the group must go the ordinary way.
	spec       bool
	specFailed bool
	cache      *runCache
	creating   map[string]bool // runs the group's requests create
	guarded    []string

	ids     map[string]bool // runs to lock and read
	recKeys []recKey        // records to look up
	msgKeys []journal.MessageKey

	runs   map[string]*runState
	order  []string        // runs in the order the group first wrote them
	dbRecs map[recKey]bool // prefetched: whether the record exists
	dbMsgs map[journal.MessageKey]bool

	newRecs map[recKey]*newRecord
	recList []*newRecord
	newMsgs map[journal.MessageKey]*journal.Message
	msgList []journal.MessageKey
	delMsgs []journal.MessageKey
	ended   []endedEpoch

	noted    []string // runs to send a NoteWake for, once committed
	notedSet map[string]bool
}

type recKey struct {
	id              string
	epoch, pos, seq uint32
}

type newRecord struct {
	key  recKey
	data []byte // journal.EncodeRecord
	dead bool   // its run was deleted later in the group
}

type endedEpoch struct {
	id    string
	epoch uint32
	at    int64
}

// runState is what the group knows of one run.
type runState struct {
	inDB    bool         // a row existed (and is locked) when the group began
	deleted bool         // that row is deleted in the group (it may be created again)
	run     *journal.Run // the run as of now; nil if there is none
	dirty   bool         // run must be written
	seq     uint64       // the last message sequence number assigned
	xmin    uint32       // the row's xmin when read (inDB)
	cached  bool         // read from the run cache
	// readOwner and readToken: the owner and token as cached (the guard
	// checks them).
	readOwner string
	readToken uint64
}

func newGroupTx(ctx context.Context, q *queries, tx *pgx.Conn, cache *runCache) *groupTx {
	return &groupTx{ctx: ctx, q: q, tx: tx, cache: cache, ids: map[string]bool{}, runs: map[string]*runState{},
		dbRecs: map[recKey]bool{}, dbMsgs: map[journal.MessageKey]bool{}, creating: map[string]bool{}}
}

// want notes what r will read.
func (g *groupTx) want(r *request) {
	if r.create != nil {
		g.ids[r.create.ID] = true
		g.creating[r.create.ID] = true
		return
	}
	b := r.batch
	for _, c := range b.Create {
		g.ids[c.ID] = true
		g.creating[c.ID] = true
	}
	for _, a := range b.Append {
		g.ids[a.RunID] = true
		g.recKeys = append(g.recKeys, recKey{a.RunID, a.Epoch, a.Pos, a.Seq})
	}
	for _, u := range b.Update {
		g.ids[u.RunID] = true
	}
	for _, k := range b.Consume {
		g.ids[k.RunID] = true
		g.msgKeys = append(g.msgKeys, k)
	}
	for _, m := range b.Send {
		g.ids[m.RunID] = true
	}
	for _, id := range b.Delete {
		g.ids[id] = true
	}
	if b.Fence.RunID != "" {
		g.ids[b.Fence.RunID] = true
	}
}

// canSpeculate reports whether the cache may answer every read the group
// announced: each run is cached or created by the group, and no message
// is consumed (the rules would ask whether it exists).
func (g *groupTx) canSpeculate() bool {
	if len(g.msgKeys) > 0 {
		return false
	}
	for id := range g.ids {
		if !g.creating[id] && !g.cache.has(id) {
			return false
		}
	}
	return true
}

// abandon marks the speculation failed and returns errSpeculation.
func (g *groupTx) abandon() error {
	g.specFailed = true
	return errSpeculation
}

// prefetch locks the runs the group touches, in id order (so two groups
// never wait for each other in a cycle), and reads them and the records
// and messages the rules will ask about, in one round trip.
func (g *groupTx) prefetch() error {
	ids := make([][]byte, 0, len(g.ids))
	for id := range g.ids {
		ids = append(ids, []byte(id))
		g.runs[id] = &runState{} // absent unless the database has it
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(g.q.txid).QueryRow(func(row pgx.Row) error { return row.Scan(&g.xid) })
	b.Queue(g.q.lockRuns, ids).Query(func(rows pgx.Rows) error {
		var id []byte
		var c runCols
		var seq, xmin int64
		_, err := pgx.ForEachRow(rows, []any{&id, &seq, &c.value, &c.owner, &c.token, &c.idle, &xmin}, func() error {
			r, err := c.decode(string(id))
			if err != nil {
				return err
			}
			g.runs[string(id)] = &runState{inDB: true, run: &r, seq: uint64(seq), xmin: uint32(xmin)}
			return nil
		})
		return err
	})
	if len(g.recKeys) > 0 {
		n := len(g.recKeys)
		rid, ep, pos, seq := make([][]byte, n), make([]int64, n), make([]int64, n), make([]int64, n)
		for i, k := range g.recKeys {
			g.dbRecs[k] = false
			rid[i], ep[i], pos[i], seq[i] = []byte(k.id), int64(k.epoch), int64(k.pos), int64(k.seq)
		}
		b.Queue(g.q.hasRecords, rid, ep, pos, seq).Query(func(rows pgx.Rows) error {
			var id []byte
			var ep, pos, seq int64
			_, err := pgx.ForEachRow(rows, []any{&id, &ep, &pos, &seq}, func() error {
				g.dbRecs[recKey{string(id), uint32(ep), uint32(pos), uint32(seq)}] = true
				return nil
			})
			return err
		})
	}
	if len(g.msgKeys) > 0 {
		n := len(g.msgKeys)
		rid, ch, seq := make([][]byte, n), make([][]byte, n), make([]int64, n)
		for i, k := range g.msgKeys {
			g.dbMsgs[k] = false
			rid[i], ch[i], seq[i] = []byte(k.RunID), []byte(k.Channel), int64(k.Seq)
		}
		b.Queue(g.q.hasMessages, rid, ch, seq).Query(func(rows pgx.Rows) error {
			var id, ch []byte
			var seq int64
			_, err := pgx.ForEachRow(rows, []any{&id, &ch, &seq}, func() error {
				g.dbMsgs[journal.MessageKey{RunID: string(id), Channel: string(ch), Seq: uint64(seq)}] = true
				return nil
			})
			return err
		})
	}
	return g.tx.SendBatch(g.ctx, b).Close()
}

// state returns what the group knows of run id, reading (and locking) it
// if the group did not prefetch it.
func (g *groupTx) state(id string) (*runState, error) {
	if rs := g.runs[id]; rs != nil {
		return rs, nil
	}
	if g.spec {
		if ce, ok := g.cache.get(id); ok {
			r := ce.run
			rs := &runState{inDB: true, run: &r, seq: ce.seq, xmin: ce.xmin, cached: true, readOwner: r.Owner, readToken: r.Token}
			g.runs[id] = rs
			g.guarded = append(g.guarded, id)
			return rs, nil
		}
		if g.creating[id] { // assumed absent: inserting it checks
			rs := &runState{}
			g.runs[id] = rs
			return rs, nil
		}
		return nil, g.abandon()
	}
	rs := &runState{}
	var c runCols
	var seq, xmin int64
	err := g.tx.QueryRow(g.ctx, g.q.lockRuns, [][]byte{[]byte(id)}).Scan(new([]byte), &seq, &c.value, &c.owner, &c.token, &c.idle, &xmin)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		g.err = err
		return nil, err
	default:
		r, err := c.decode(id)
		if err != nil {
			return nil, err
		}
		rs.inDB, rs.run, rs.seq, rs.xmin = true, &r, uint64(seq), uint32(xmin)
	}
	g.runs[id] = rs
	return rs, nil
}

// GetRun implements journal.Tx.
func (g *groupTx) GetRun(id string) (*journal.Run, error) {
	rs, err := g.state(id)
	if err != nil {
		return nil, err
	}
	return rs.run, nil
}

// PutRun implements journal.Tx.
func (g *groupTx) PutRun(old, r *journal.Run) error {
	rs, err := g.state(r.ID)
	if err != nil {
		return err
	}
	if old != nil && old.Epoch != r.Epoch {
		g.ended = append(g.ended, endedEpoch{r.ID, old.Epoch, journal.UnixNano(r.UpdatedAt)})
	}
	c := *r
	for _, t := range []*time.Time{&c.CreatedAt, &c.UpdatedAt, &c.WakeAt, &c.Deadline} {
		*t = journal.NormTime(*t)
	}
	rs.run = &c
	if !rs.dirty {
		rs.dirty = true
		g.order = append(g.order, r.ID)
	}
	return nil
}

// HasRecord implements journal.Tx.
func (g *groupTx) HasRecord(id string, epoch, pos, seq uint32) (bool, error) {
	k := recKey{id, epoch, pos, seq}
	if nr := g.newRecs[k]; nr != nil && !nr.dead {
		return true, nil
	}
	rs, err := g.state(id)
	if err != nil || rs.deleted {
		return false, err
	}
	has, ok := g.dbRecs[k]
	if !ok && g.spec {
		return false, nil // assumed absent: inserting it checks
	}
	if !ok {
		var one int
		err := g.tx.QueryRow(g.ctx, g.q.hasRecords, [][]byte{[]byte(id)}, []int64{int64(epoch)}, []int64{int64(pos)}, []int64{int64(seq)}).Scan(new([]byte), &one, &one, &one)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			g.err = err
			return false, err
		default:
			has = true
		}
		g.dbRecs[k] = has
	}
	return has, nil
}

// PutRecord implements journal.Tx.
func (g *groupTx) PutRecord(id string, epoch uint32, r *journal.Record) error {
	nr := &newRecord{key: recKey{id, epoch, r.Pos, r.Seq}, data: journal.EncodeRecord(id, r)}
	if g.newRecs == nil {
		g.newRecs = map[recKey]*newRecord{}
	}
	g.newRecs[nr.key] = nr
	g.recList = append(g.recList, nr)
	return nil
}

// HasMessage implements journal.Tx.
func (g *groupTx) HasMessage(k journal.MessageKey) (bool, error) {
	if g.newMsgs[k] != nil {
		return true, nil
	}
	if g.spec {
		return false, g.abandon()
	}
	rs, err := g.state(k.RunID)
	if err != nil || rs.deleted {
		return false, err
	}
	has, ok := g.dbMsgs[k]
	if !ok {
		var seq int64
		err := g.tx.QueryRow(g.ctx, g.q.hasMessages, [][]byte{[]byte(k.RunID)}, [][]byte{[]byte(k.Channel)}, []int64{int64(k.Seq)}).Scan(new([]byte), new([]byte), &seq)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			g.err = err
			return false, err
		default:
			has = true
		}
		g.dbMsgs[k] = has
	}
	return has, nil
}

// HasMessages implements journal.Tx: whether any message waits in run
// id's inbox, as of the group's writes so far.
func (g *groupTx) HasMessages(id string) (bool, error) {
	for _, k := range g.msgList {
		if k.RunID == id && g.newMsgs[k] != nil {
			return true, nil
		}
	}
	if g.spec {
		return false, g.abandon()
	}
	rs, err := g.state(id)
	if err != nil || rs.deleted {
		return false, err
	}
	var n int64
	if err := g.tx.QueryRow(g.ctx, g.q.countMessages, []byte(id)).Scan(&n); err != nil {
		g.err = err
		return false, err
	}
	for _, k := range g.delMsgs {
		if k.RunID == id {
			n--
		}
	}
	return n > 0, nil
}

// DeleteMessage implements journal.Tx.
func (g *groupTx) DeleteMessage(k journal.MessageKey) error {
	if g.newMsgs[k] != nil {
		delete(g.newMsgs, k)
		return nil
	}
	g.dbMsgs[k] = false
	g.delMsgs = append(g.delMsgs, k)
	return nil
}

// PutMessage implements journal.Tx.
func (g *groupTx) PutMessage(m *journal.Message) error {
	rs, err := g.state(m.RunID)
	if err != nil {
		return err
	}
	rs.seq++
	m.Seq = rs.seq
	if !rs.dirty { // the row's msg_seq changes
		rs.dirty = true
		g.order = append(g.order, m.RunID)
	}
	c := *m
	c.SentAt = journal.NormTime(c.SentAt)
	k := journal.MessageKey{RunID: m.RunID, Channel: m.Channel, Seq: m.Seq}
	if g.newMsgs == nil {
		g.newMsgs = map[journal.MessageKey]*journal.Message{}
	}
	g.newMsgs[k] = &c
	g.msgList = append(g.msgList, k)
	return nil
}

// DeleteRun implements journal.Tx.
func (g *groupTx) DeleteRun(r *journal.Run) error {
	if g.spec {
		return g.abandon()
	}
	rs, err := g.state(r.ID)
	if err != nil {
		return err
	}
	if rs.inDB {
		rs.deleted = true
	}
	rs.run, rs.seq = nil, 0
	for _, nr := range g.recList {
		if nr.key.id == r.ID {
			nr.dead = true
		}
	}
	for k := range g.newMsgs {
		if k.RunID == r.ID {
			delete(g.newMsgs, k)
		}
	}
	g.ended = slices.DeleteFunc(g.ended, func(e endedEpoch) bool { return e.id == r.ID })
	return nil
}

// flush writes what the group changed (see writes) and commits, in one
// round trip.
func (g *groupTx) flush(channel string) error {
	b := &pgx.Batch{}
	for _, st := range g.writes(channel) {
		b.Queue(st.sql, st.args...)
	}
	b.Queue("COMMIT")
	return g.tx.SendBatch(g.ctx, b).Close()
}

// writes returns the statements that write what the group changed, in an
// order that gives the final state: deletions of runs first (a run
// deleted and created again in one group is written anew), then runs,
// records, consumed and sent messages, ended epochs, and notes.
func (g *groupTx) writes(channel string) []stmt {
	var b stmts
	var del [][]byte
	var ins, upd runRows
	for id, rs := range g.runs {
		if rs.deleted {
			del = append(del, []byte(id))
		}
	}
	for _, id := range g.order {
		rs := g.runs[id]
		switch {
		case rs.run == nil:
		case rs.inDB && !rs.deleted:
			upd.add(rs)
		default:
			ins.add(rs)
		}
	}
	if len(del) > 0 {
		for _, q := range g.q.deleteRuns {
			b.Queue(q, del)
		}
	}
	for _, v := range append(ins.value, upd.value...) {
		g.bytes += len(v)
	}
	if len(ins.id) > 0 {
		b.Queue(g.q.insertRuns, ins.id, ins.workflow, ins.status, ins.parent, ins.epoch, ins.wake, ins.updated, ins.seq, ins.value, ins.owner, ins.token, ins.idle)
	}
	if len(upd.id) > 0 {
		b.Queue(g.q.updateRuns, upd.id, upd.status, upd.epoch, upd.wake, upd.updated, upd.seq, upd.value, upd.owner, upd.token, upd.idle)
	}
	g.queueRows(&b) // queue.go
	if len(g.recList) > 0 {
		var rid [][]byte
		var ep, pos, seq []int64
		var val [][]byte
		for _, nr := range g.recList {
			if nr.dead {
				continue
			}
			rid = append(rid, []byte(nr.key.id))
			ep, pos, seq = append(ep, int64(nr.key.epoch)), append(pos, int64(nr.key.pos)), append(seq, int64(nr.key.seq))
			val = append(val, nr.data)
			g.bytes += len(nr.data)
		}
		if len(rid) > 0 {
			b.Queue(g.q.insertRecords, rid, ep, pos, seq, val)
		}
	}
	if len(g.delMsgs) > 0 {
		rid, ch, seq := make([][]byte, len(g.delMsgs)), make([][]byte, len(g.delMsgs)), make([]int64, len(g.delMsgs))
		for i, k := range g.delMsgs {
			rid[i], ch[i], seq[i] = []byte(k.RunID), []byte(k.Channel), int64(k.Seq)
		}
		b.Queue(g.q.deleteMessages, rid, ch, seq)
	}
	if len(g.newMsgs) > 0 {
		var rid, ch, val [][]byte
		var seq []int64
		for _, k := range g.msgList {
			m := g.newMsgs[k]
			if m == nil {
				continue
			}
			rid, ch, seq = append(rid, []byte(k.RunID)), append(ch, []byte(k.Channel)), append(seq, int64(k.Seq))
			val = append(val, journal.EncodeMessage(m))
			g.bytes += len(val[len(val)-1])
		}
		b.Queue(g.q.insertMessages, rid, ch, seq, val)
	}
	if len(g.ended) > 0 {
		var rid [][]byte
		var ep, at []int64
		for _, e := range g.ended {
			rid, ep, at = append(rid, []byte(e.id)), append(ep, int64(e.epoch)), append(at, e.at)
		}
		b.Queue(g.q.insertEpochs, rid, ep, at)
	}
	if len(g.noted) > 0 {
		payloads := make([]string, 0, len(g.noted))
		for _, id := range g.noted {
			wf, owner := "", ""
			if rs := g.runs[id]; rs != nil && rs.run != nil {
				wf, owner = rs.run.Workflow, rs.run.Owner
			}
			payloads = append(payloads, encodeNote(journal.NoteWake, id, wf, owner))
		}
		b.Queue(g.q.notify, channel, payloads)
	}
	return b
}

// stmts collects statements as a pgx.Batch would.
type stmts []stmt

func (b *stmts) Queue(sql string, args ...any) { *b = append(*b, stmt{sql, args}) }

// guard returns the statement that locks the runs the group read from the
// cache and fails (division by zero) unless each is still as cached.
func (g *groupTx) guard() (stmt, bool) {
	n := len(g.guarded)
	if n == 0 {
		return stmt{}, false
	}
	slices.Sort(g.guarded)
	ids, xmins, owners, tokens := make([][]byte, n), make([]int64, n), make([][]byte, n), make([]int64, n)
	for i, id := range g.guarded {
		rs := g.runs[id]
		ids[i], xmins[i], owners[i], tokens[i] = []byte(id), int64(rs.xmin), []byte(rs.readOwner), int64(rs.readToken)
	}
	return stmt{g.q.guard, []any{ids, xmins, owners, tokens}}, true
}

// remember updates the cache after the group committed in transaction
// xid: the rows it wrote carry that xmin now.
func (g *groupTx) remember(xid int64) {
	for id, rs := range g.runs {
		switch {
		case rs.run == nil:
			if rs.inDB || rs.deleted {
				g.cache.drop(id)
			}
		case rs.dirty:
			g.cache.put(rs.run, rs.seq, uint32(xid))
		case rs.inDB && !rs.cached:
			g.cache.put(rs.run, rs.seq, rs.xmin)
		}
	}
}

// forget drops the group's runs from the cache, after a failed commit.
func (g *groupTx) forget() {
	for id := range g.runs {
		g.cache.drop(id)
	}
	for id := range g.ids {
		g.cache.drop(id)
	}
}

// checkFence checks f against the run as the group sees it (locked):
// journal.ErrNotFound if the run is gone, journal.ErrNotOwner if another
// engine owns it or it was claimed again since.
func (g *groupTx) checkFence(f journal.Fence) error {
	if f.RunID == "" {
		return nil
	}
	r, err := g.GetRun(f.RunID)
	switch {
	case err != nil:
		return err
	case r == nil:
		return fmt.Errorf("fenced commit for run %q: %w", f.RunID, journal.ErrNotFound)
	case r.Owner != f.Owner || r.Token != f.Token:
		return fmt.Errorf("commit for run %q by engine %q (token %d): the run is owned by %q (token %d): %w",
			f.RunID, f.Owner, f.Token, r.Owner, r.Token, journal.ErrNotOwner)
	}
	return nil
}

// notes notes the runs that b, applied, gives news (see notes.go): a
// message, a cancel request, a record appended by another run, a creation
// without an owner. A fenced step commit of a run's own records notes
// nothing: the hot path sends no NOTIFY.
func (g *groupTx) notes(b *journal.Batch) {
	for _, c := range b.Create {
		if c.Owner == "" {
			g.note(c.ID)
		}
	}
	for _, a := range b.Append {
		if a.RunID != b.Fence.RunID {
			g.note(a.RunID)
		}
	}
	for _, u := range b.Update {
		if u.CancelRequested {
			g.note(u.RunID)
		}
	}
	for _, m := range b.Send {
		g.note(m.RunID)
	}
}

// note notes run id once per group.
func (g *groupTx) note(id string) {
	if g.notedSet == nil {
		g.notedSet = map[string]bool{}
	}
	if !g.notedSet[id] {
		g.notedSet[id] = true
		g.noted = append(g.noted, id)
	}
}

// runRows are the columns of runs to insert or update.
type runRows struct {
	id, workflow, parent, value, owner [][]byte
	status                             []int16
	epoch, updated, seq, token         []int64
	wake                               []*int64
	idle                               []bool
}

func (rr *runRows) add(rs *runState) {
	r := rs.run
	rr.id = append(rr.id, []byte(r.ID))
	rr.workflow = append(rr.workflow, []byte(r.Workflow))
	rr.parent = append(rr.parent, []byte(r.Parent))
	rr.value = append(rr.value, journal.EncodeRun(r))
	rr.status = append(rr.status, int16(r.Status))
	rr.epoch = append(rr.epoch, int64(r.Epoch))
	rr.updated = append(rr.updated, journal.UnixNano(r.UpdatedAt))
	rr.seq = append(rr.seq, int64(rs.seq))
	rr.owner = append(rr.owner, []byte(r.Owner))
	rr.token = append(rr.token, int64(r.Token))
	rr.idle = append(rr.idle, r.Idle)
	var wake *int64
	if !r.WakeAt.IsZero() {
		w := journal.UnixNano(r.WakeAt)
		wake = &w
	}
	rr.wake = append(rr.wake, wake)
}
