package postgres

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// One round trip per group commit, when the run cache (runcache.go) holds
// every run the group reads. The statements go out in one pipeline, one
// implicit transaction that commits at its Sync:
//
//	guard                   locks the cached runs (in id order), fails
//	                        unless xmin, owner and token are the cached ones,
//	                        and returns txid_current() (plain SELECT
//	                        txid_current() if the group reads no cached run);
//	                        then a Flush: the server sends the id at once
//	the multi-row writes    (groupTx.writes), NOTIFY among them
//	Sync                    commits
//
// Any error the server reports aborts the transaction, so nothing of the
// group lands: a failed guard or a duplicate key (a record or run the
// rules assumed absent) sends the group down the ordinary path. The
// transaction id comes back before the server runs anything that writes
// (the Flush), so a commit whose reply is lost is resolved with
// txid_status exactly as on the ordinary path.

// combine makes one statement of the group's writes and first (the guard
// or txid_current, whose first column stays the transaction's id): each
// write a common table expression (parameters renumbered), the notes'
// SELECT read by the main query so that it runs. One statement, so one
// Bind and Execute on the server per group commit. The main query locks
// and checks the cached runs before the writes run (PostgreSQL runs the
// writes that the main query does not read after it); in any other order
// a run written first is one the guard does not see unchanged, so the
// transaction fails and the group goes the ordinary way: never a write
// without the check.
//
// Only writes that touch different rows and read none of each other's
// combine (ok reports whether they did): the runs inserted and those
// updated, records, messages, ended epochs, notes; any other statement
// (the queue columns of runs just written, say) needs to see the writes
// before it, and the group sends its statements one by one.
func (q *queries) combine(first stmt, writes []stmt) (stmt, bool) {
	if len(writes) == 0 {
		return first, true
	}
	for _, w := range writes {
		switch w.sql {
		case q.insertRuns, q.updateRuns, q.insertRecords, q.insertMessages, q.insertEpochs, q.notify:
		default:
			return stmt{}, false
		}
	}
	var with, refs []string
	var args []any
	for i, w := range writes {
		name := "w" + strconv.Itoa(i)
		with = append(with, name+" AS ("+renumber(w.sql, len(args))+")")
		if strings.HasPrefix(w.sql, "SELECT") {
			refs = append(refs, "(SELECT count(*) FROM "+name+")")
		}
		args = append(args, w.args...)
	}
	main := renumber(first.sql, len(args))
	args = append(args, first.args...)
	const head = "SELECT txid_current()"
	if len(refs) > 0 {
		main = strings.Replace(main, head, head+", "+strings.Join(refs, ", "), 1)
	}
	return stmt{sql: "WITH " + strings.Join(with, ",\n") + "\n" + main, args: args}, true
}

var param = regexp.MustCompile(`\$([0-9]+)`)

// renumber adds off to the number of each parameter ($n) of sql.
func renumber(sql string, off int) string {
	if off == 0 {
		return sql
	}
	return param.ReplaceAllStringFunc(sql, func(p string) string {
		n, _ := strconv.Atoi(p[1:])
		return "$" + strconv.Itoa(n+off)
	})
}

// errSpeculation is what the group's reads return when the cache cannot
// answer them: the group goes the ordinary way.
var errSpeculation = errors.New("postgres: the run cache cannot answer this read")

// stmt is one statement of a group's writes.
type stmt struct {
	sql  string
	args []any
}

// speculationFailed reports whether err (from the fast path) says that an
// assumption of the run cache was wrong, rather than that the server or
// the connection failed.
func speculationFailed(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return !transient(err)
}

// runPipeline sends stmts on conn as one implicit transaction, with a
// Flush after the first, whose first column (txid_current) it scans into
// *xid. Its connection plans without sequential scans (see Open).
// It returns the first error.
func runPipeline(ctx context.Context, conn *pgx.Conn, xid *int64, stmts []stmt) error {
	const xidAt = 0
	sds := make([]*pgconn.StatementDescription, len(stmts))
	for i, s := range stmts {
		sd, err := conn.Prepare(ctx, s.sql, s.sql) // once per connection: pgx keeps it
		if err != nil {
			return err
		}
		sds[i] = sd
	}
	var eqb pgx.ExtendedQueryBuilder
	p := conn.PgConn().StartPipeline(ctx)
	for i, s := range stmts {
		if err := eqb.Build(conn.TypeMap(), sds[i], s.args); err != nil {
			p.Close()
			return err
		}
		p.SendQueryStatement(sds[i], eqb.ParamValues, eqb.ParamFormats, append([]int16(nil), eqb.ResultFormats...))
		if i == xidAt {
			p.SendFlushRequest()
		}
	}
	if err := p.Sync(); err != nil {
		p.Close()
		return err
	}
	var first error
	for i := range stmts {
		res, err := p.GetResults()
		if err != nil {
			first = err
			break
		}
		rr, ok := res.(*pgconn.ResultReader)
		if !ok {
			first = errors.New("postgres: pipeline: unexpected result")
			break
		}
		if i == xidAt && rr.NextRow() {
			fd := rr.FieldDescriptions()[0]
			if err := conn.TypeMap().Scan(fd.DataTypeOID, fd.Format, rr.Values()[0], xid); err != nil {
				rr.Close()
				first = err
				break
			}
		}
		if _, err := rr.Close(); err != nil {
			first = err
			break
		}
	}
	if first == nil {
		if _, err := p.GetResults(); err != nil { // the Sync: the commit
			first = err
		}
	}
	if err := p.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
