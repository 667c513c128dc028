// Package determinism is an analyzer that finds code in durable workflow
// functions that breaks replay: clock reads, randomness, I/O, goroutines,
// channels, locks, map iteration that orders durable calls, and writes to
// package variables. Each report names the durable alternative.
//
// Workflow code is the function given to durable.Define (a function
// literal or a function of the package), every function of the same
// package that it calls, transitively, and the function literals inside
// them, except step functions: a function literal passed where the
// parameter is a function whose first parameter is a context.Context
// (durable.Step, durable.Go, Saga.Add and your own wrappers of them) runs
// as a step, once, with its result journaled, and may do all of the above.
// Functions of other packages are not followed.
//
// A comment //durablevet:ignore (with the reason after it) on the line of
// a report or the line before silences it: for a clock read that only
// feeds a log line, say.
package determinism

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/types/typeutil"
)

// Analyzer reports nondeterministic code in durable workflow functions.
var Analyzer = &analysis.Analyzer{
	Name: "durablevet",
	Doc: `report code that breaks the replay of durable workflows

In workflow functions (those given to durable.Define and the functions of
the same package they call, outside step functions) it reports time.Now,
Since, Sleep, After and timers, context.WithCancel, WithTimeout and their
kin, math/rand and crypto/rand, os.Getenv and
file or network I/O, go statements, channel operations and select, sync
primitives, ranging over a map when durable calls happen in the loop, and
writes to package variables. Each report names the durable alternative.`,
	URL: "https://github.com/durable-go/durable/tree/main/cmd/durablevet",
	Run: run,
}

const durablePath = "github.com/durable-go/durable"

// checker walks the workflow code of one package.
type checker struct {
	pass    *analysis.Pass
	ignored map[*token.File]map[int]bool // lines after a //durablevet:ignore comment, and its own
	decls   map[*types.Func]*ast.FuncDecl
	done    map[ast.Node]bool // function bodies walked
	queue   []ast.Node
}

func run(pass *analysis.Pass) (any, error) {
	c := &checker{pass: pass, decls: map[*types.Func]*ast.FuncDecl{}, done: map[ast.Node]bool{}, ignored: map[*token.File]map[int]bool{}}
	for _, f := range pass.Files {
		for _, cg := range f.Comments {
			for _, cm := range cg.List {
				if strings.HasPrefix(strings.TrimPrefix(cm.Text, "//"), "durablevet:ignore") {
					tf := pass.Fset.File(cm.Pos())
					if c.ignored[tf] == nil {
						c.ignored[tf] = map[int]bool{}
					}
					line := tf.Line(cm.Pos())
					c.ignored[tf][line], c.ignored[tf][line+1] = true, true
				}
			}
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				if fn, ok := pass.TypesInfo.Defs[fd.Name].(*types.Func); ok {
					c.decls[fn] = fd
				}
			}
		}
	}
	// The roots: the functions given to durable.Define.
	for _, f := range pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || !isDurable(typeutil.Callee(pass.TypesInfo, call), "Define") || len(call.Args) != 2 {
				return true
			}
			switch fn := ast.Unparen(call.Args[1]).(type) {
			case *ast.FuncLit:
				c.enqueue(fn.Body)
			default:
				if obj, ok := typeutil.Callee(pass.TypesInfo, &ast.CallExpr{Fun: fn}).(*types.Func); ok {
					if fd := c.decls[obj]; fd != nil {
						c.enqueue(fd.Body)
					}
				}
			}
			return true
		})
	}
	for len(c.queue) > 0 {
		body := c.queue[0]
		c.queue = c.queue[1:]
		c.walk(body)
	}
	return nil, nil
}

// report reports a diagnostic at n unless a //durablevet:ignore comment
// is on its line or the line before.
func (c *checker) report(n ast.Node, format string, args ...any) {
	tf := c.pass.Fset.File(n.Pos())
	if tf != nil && c.ignored[tf][tf.Line(n.Pos())] {
		return
	}
	c.pass.ReportRangef(n, format, args...)
}

func (c *checker) enqueue(body ast.Node) {
	if !c.done[body] {
		c.done[body] = true
		c.queue = append(c.queue, body)
	}
}

// walk checks the workflow code under n.
func (c *checker) walk(n ast.Node) {
	info := c.pass.TypesInfo
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			c.report(n, "go statement in workflow code: goroutines run outside the journal and replay in another order; use durable.Go (and Future.Get or durable.AwaitAll)")
		case *ast.SendStmt:
			c.report(n, "channel send in workflow code: channels are not journaled; use durable.Send to another run, or return values from steps")
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				c.report(n, "channel receive in workflow code: channels are not journaled; use durable.Receive, Future.Get or durable.AwaitAny")
			}
		case *ast.SelectStmt:
			c.report(n, "select in workflow code: which case wins is not journaled; use durable.AwaitAny with futures, durable.NewTimer and durable.OnReceive")
			// Report the select, not each of its cases' operations.
			for _, cl := range n.Body.List {
				for _, s := range cl.(*ast.CommClause).Body {
					c.walk(s)
				}
			}
			return false
		case *ast.RangeStmt:
			c.checkRange(n)
		case *ast.AssignStmt:
			if n.Tok != token.DEFINE {
				for _, lhs := range n.Lhs {
					c.checkWrite(lhs)
				}
			}
		case *ast.IncDecStmt:
			c.checkWrite(n.X)
		case *ast.CallExpr:
			c.checkCall(n)
			// Step functions passed here are not workflow code.
			sig, _ := info.TypeOf(n.Fun).(*types.Signature)
			ast.Inspect(n.Fun, func(m ast.Node) bool { return c.sub(m) })
			for i, arg := range n.Args {
				if _, lit := ast.Unparen(arg).(*ast.FuncLit); lit && sig != nil && isStepFunc(paramType(sig, i)) {
					continue
				}
				c.walk(arg)
			}
			return false
		}
		return true
	})
}

// sub walks m as workflow code, for ast.Inspect callbacks that must stop
// there.
func (c *checker) sub(m ast.Node) bool {
	if m != nil {
		c.walk(m)
	}
	return false
}

// paramType is the type of the i'th argument of a call of sig.
func paramType(sig *types.Signature, i int) types.Type {
	p := sig.Params()
	if sig.Variadic() && i >= p.Len()-1 {
		if s, ok := p.At(p.Len() - 1).Type().(*types.Slice); ok {
			return s.Elem()
		}
		return nil
	}
	if i < p.Len() {
		return p.At(i).Type()
	}
	return nil
}

// isStepFunc reports whether t is a function type whose first parameter
// is a context.Context: a step function.
func isStepFunc(t types.Type) bool {
	if t == nil {
		return false
	}
	sig, ok := t.Underlying().(*types.Signature)
	if !ok || sig.Params().Len() == 0 {
		return false
	}
	return isNamed(sig.Params().At(0).Type(), "context", "Context")
}

func isNamed(t types.Type, pkg, name string) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == pkg && n.Obj().Name() == name
}

// isDurable reports whether obj is the durable package's function name.
func isDurable(obj types.Object, name string) bool {
	fn, ok := obj.(*types.Func)
	return ok && fn.Pkg() != nil && fn.Pkg().Path() == durablePath && fn.Name() == name
}

// checkCall reports a call that breaks replay, and follows calls to
// functions of this package.
func (c *checker) checkCall(call *ast.CallExpr) {
	obj := typeutil.Callee(c.pass.TypesInfo, call)
	if b, ok := obj.(*types.Builtin); ok && b.Name() == "close" {
		c.report(call, "close of a channel in workflow code: channels are not journaled; use durable.Receive, Future.Get or durable.AwaitAny")
		return
	}
	fn, ok := obj.(*types.Func)
	if !ok || fn.Pkg() == nil || fn.Pkg().Path() == durablePath {
		return // the engine's own code (in its tests) is not workflow code
	}
	if fn.Pkg() == c.pass.Pkg {
		if fd := c.decls[fn.Origin()]; fd != nil {
			c.enqueue(fd.Body)
		}
		return
	}
	if msg := forbidden(fn); msg != "" {
		c.report(call, "%s", msg)
	}
}

// forbidden returns the report for a call of fn in workflow code, or "".
func forbidden(fn *types.Func) string {
	path, name := fn.Pkg().Path(), fn.Name()
	recv := ""
	if sig, ok := fn.Type().(*types.Signature); ok && sig.Recv() != nil {
		t := sig.Recv().Type()
		if p, ok := t.(*types.Pointer); ok {
			t = p.Elem()
		}
		if n, ok := types.Unalias(t).(*types.Named); ok {
			recv = n.Obj().Name()
		}
	}
	full := path + "." + name
	if recv != "" {
		full = path + ".(" + recv + ")." + name
	}
	switch path {
	case "time":
		switch {
		case recv == "" && (name == "Now" || name == "Since" || name == "Until"):
			return fmt.Sprintf("%s in workflow code reads the clock, which differs on replay; use durable.Now(ctx)", full)
		case recv == "" && name == "Sleep":
			return "time.Sleep in workflow code does not survive a restart; use durable.Sleep(ctx, d)"
		case recv == "" && (name == "After" || name == "AfterFunc" || name == "Tick" || name == "NewTimer" || name == "NewTicker"),
			recv == "Timer" || recv == "Ticker":
			return fmt.Sprintf("%s in workflow code is a timer outside the journal; use durable.Sleep, or durable.NewTimer with durable.AwaitAny", full)
		}
	case "context":
		switch {
		case recv != "":
		case name == "WithCancel" || name == "WithCancelCause":
			return fmt.Sprintf("%s in workflow code makes a context that durable operations do not take and that replay does not cancel at the same point; use durable.WithCancel(ctx)", full)
		case name == "WithTimeout" || name == "WithTimeoutCause" || name == "WithDeadline" || name == "WithDeadlineCause" || name == "AfterFunc":
			return fmt.Sprintf("%s in workflow code is a timer outside the journal; use durable.WithCancel(ctx) with durable.NewTimer and durable.AwaitAny", full)
		case name == "WithoutCancel":
			return fmt.Sprintf("%s in workflow code makes a context that durable operations do not take; use durable.WithoutCancel(ctx)", full)
		}
	case "math/rand", "math/rand/v2", "crypto/rand":
		return fmt.Sprintf("%s in workflow code draws a different number on replay; draw it inside a durable.Step (or use durable.Now-based data journaled by a step)", full)
	case "os":
		switch {
		case recv == "" && (name == "Getenv" || name == "LookupEnv" || name == "Environ" || name == "ExpandEnv"):
			return fmt.Sprintf("%s in workflow code may read another value on replay; read configuration inside a durable.Step, or pass it in the workflow's input", full)
		case recv == "" && strings.HasPrefix(name, "Is"), name == "NewSyscallError", name == "Exit":
			return ""
		}
		return fmt.Sprintf("%s in workflow code does I/O outside the journal; do it inside a durable.Step", full)
	case "io/ioutil", "os/exec", "net", "net/http", "net/rpc", "net/smtp", "database/sql":
		if path == "net" && recv == "" && (strings.HasPrefix(name, "Parse") || strings.HasPrefix(name, "Join") || strings.HasPrefix(name, "Split") || name == "IPv4" || name == "CIDRMask" || name == "IPv4Mask") {
			return ""
		}
		if path == "net/http" && recv == "" && (strings.HasPrefix(name, "New") && name != "NewFileTransport" || name == "StatusText" || name == "CanonicalHeaderKey") {
			return ""
		}
		if path == "net/http" && (recv == "Header" || recv == "Request" || recv == "Cookie" || recv == "URL") {
			return ""
		}
		return fmt.Sprintf("%s in workflow code does I/O outside the journal; do it inside a durable.Step", full)
	case "sync", "sync/atomic":
		return fmt.Sprintf("%s in workflow code: workflow code runs on one goroutine and replays; use durable.Go with Future.Get or durable.AwaitAll to wait, and keep shared state in steps", full)
	}
	return ""
}

// checkRange reports ranging over a channel, and over a map when the loop
// makes durable calls (their positions would follow the map's random
// order).
func (c *checker) checkRange(r *ast.RangeStmt) {
	t := c.pass.TypesInfo.TypeOf(r.X)
	if t == nil {
		return
	}
	switch t.Underlying().(type) {
	case *types.Chan:
		c.report(r.X, "range over a channel in workflow code: channels are not journaled; use durable.Receive in a loop")
	case *types.Map:
		if c.durableCallIn(r.Body) {
			c.report(r.X, "range over a map makes durable calls in the map's random order, which differs on replay; range over the sorted keys (slices.Sorted(maps.Keys(m)))")
		}
	}
}

// durableCallIn reports whether n calls a function of the durable package.
func (c *checker) durableCallIn(n ast.Node) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok && !found {
			if fn, ok := typeutil.Callee(c.pass.TypesInfo, call).(*types.Func); ok && fn.Pkg() != nil && fn.Pkg().Path() == durablePath {
				found = true
			}
		}
		return !found
	})
	return found
}

// checkWrite reports an assignment to a package-level variable (of any
// package), or to a part of one.
func (c *checker) checkWrite(lhs ast.Expr) {
	root := lhs
	for {
		switch e := root.(type) {
		case *ast.ParenExpr:
			root = e.X
			continue
		case *ast.SelectorExpr:
			if v, ok := c.pass.TypesInfo.Uses[e.Sel].(*types.Var); ok && !v.IsField() {
				root = e.Sel // pkg.Var
			} else {
				root = e.X
				continue
			}
		case *ast.IndexExpr:
			root = e.X
			continue
		case *ast.StarExpr:
			root = e.X
			continue
		}
		break
	}
	id, ok := root.(*ast.Ident)
	if !ok {
		return
	}
	v, ok := c.pass.TypesInfo.Uses[id].(*types.Var)
	if !ok || v.Pkg() == nil || v.Parent() != v.Pkg().Scope() {
		return
	}
	c.report(lhs, "workflow code writes package variable %s: the write is lost on a restart and not repeated on replay; keep state in local variables, or return it from a durable.Step", id.Name)
}
