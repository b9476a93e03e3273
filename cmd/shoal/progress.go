package main

// The live progress view of `service create`, `scale` and `update`, shaped
// like Docker's:
//
//	overall progress: 2 out of 3 tasks
//	1/3: running   [==================================================>]
//	2/3: preparing [=================================>                 ]
//	3/3: No such image: nosuch:latest
//	verify: Service converged
//
// Unlike Docker it returns as soon as every slot has a running task of the
// current spec; Docker's 5 s "verify" wait is opt-in with --verify. On a
// terminal the block is redrawn in place; elsewhere (pipes, logs, tests)
// each line is printed when its text changes.

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// pollInterval is how often the progress view asks the daemon: often, as
// the question is cheap and the answer is what the user waits for.
var pollInterval = 50 * time.Millisecond

const (
	// maxProgressBars: above this many replicas only the overall line is
	// shown, as in Docker.
	maxProgressBars = 20
	// maxProgressError is how much of a task error a slot line shows, so
	// that it fits a narrow terminal on one line.
	maxProgressError = 75
	// stateWidth is the longest state name shown with a bar ("preparing").
	stateWidth = 9
)

// waitOptions are the flags of the commands that wait for convergence.
type waitOptions struct {
	detach  bool
	quiet   bool          // wait, but print nothing
	timeout time.Duration // 0: no limit
	verify  time.Duration // how long tasks must stay running once converged
}

// waitForService shows the progress of svc until every desired slot has a
// running task of the current spec (and, with --verify, they stay so). ^C
// stops waiting and leaves the service as it is; --timeout gives up with an
// error, and so does a rolling update that pauses after a failure.
func (c *cli) waitForService(ctx context.Context, d *daemonConn, svc *api.Service, o waitOptions) error {
	name := svc.GetSpec().GetName()
	if name == "" {
		name = svc.GetId()
	}
	p := newProgressPrinter(c.out, o.quiet)
	// waitCtx ends at ^C or at the timeout; ctx tells which.
	waitCtx := ctx
	if o.timeout > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	stopped := func(view progressView) error {
		if ctx.Err() != nil {
			return p.interrupted(name)
		}
		return view.timeoutError(name, o.timeout)
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()

	// The rolling update this command started, if any: then the wait ends
	// when the update completes, not when the new tasks first run.
	var update uint64
	if st := svc.GetUpdateStatus(); st.GetState().InProgress() && st.GetStartedVersion() == svc.GetVersion() {
		update = svc.GetVersion()
	}
	view := progressView{replicas: svc.GetSpec().GetReplicas()}
	var convergedAt time.Time
	verify := ""
	for {
		cur, err := d.Control.GetService(waitCtx, &api.GetServiceRequest{Ref: svc.GetId()})
		var tasks *api.ListTasksResponse
		if err == nil {
			tasks, err = d.Control.ListTasks(waitCtx, &api.ListTasksRequest{Service: svc.GetId()})
		}
		if err != nil {
			// The daemon may see the deadline pass before waitCtx does.
			if waitCtx.Err() != nil || status.Code(err) == codes.DeadlineExceeded {
				return stopped(view)
			}
			return err
		}
		view = serviceProgress(cur, tasks.GetTasks())
		st := cur.GetUpdateStatus()
		switch {
		case st.GetState().Paused():
			p.show(view)
			return fmt.Errorf("service %s: %s; see 'shoal service ps %s', then run 'shoal service update %s' with a spec that works, which resumes the update", name, st.GetMessage(), name, name)
		case update != 0 && st.GetStartedVersion() == update+1 && strings.HasPrefix(st.GetMessage(), "update rolled back"):
			// --update-failure-action rollback: the managers put the
			// previous spec back as the next version.
			p.show(view)
			return fmt.Errorf("service %s: %s; the previous spec is back, see 'shoal service ps %s'", name, st.GetMessage(), name)
		case update != 0 && st.GetStartedVersion() != update:
			p.show(view)
			return fmt.Errorf("service %s was updated again meanwhile; see 'shoal service ps %s'", name, name)
		}
		// Every slot runs the current spec, and the update (if this
		// command started one) has completed.
		converged := view.converged() && (update == 0 || st.GetState().Completed())
		done := false
		switch {
		case !converged && view.converged():
			verify = fmt.Sprintf("Waiting for the update to complete: each new task is watched for %s", time.Duration(cur.GetSpec().GetUpdate().GetMonitorNs()))
		case converged:
			if convergedAt.IsZero() {
				convergedAt = time.Now()
			}
			if left := o.verify - time.Since(convergedAt); left > 0 {
				verify = fmt.Sprintf("Waiting %d seconds to verify that tasks are stable...", left/time.Second+1)
			} else {
				verify, done = "Service converged", true
			}
		case !convergedAt.IsZero():
			verify, convergedAt = "Detected task failure", time.Time{}
		}
		view.verify = verify
		p.show(view)
		if done {
			return nil
		}

		select {
		case <-waitCtx.Done():
			return stopped(view)
		case <-tick.C:
		}
	}
}

// progressView is what the progress view shows of a service at one poll.
type progressView struct {
	replicas uint64
	running  uint64
	slots    []progressLine // one per slot; none above maxProgressBars
	verify   string         // the "verify:" line, if any
}

// progressLine is one line of the view: "ID: TEXT", with a bar of step out
// of 9 when a slot's task is on its way to running.
type progressLine struct {
	id     string
	text   string
	step   int
	failed bool // text is the slot's task error
}

func (v progressView) converged() bool { return v.running == v.replicas }

func (v progressView) overall() progressLine {
	return progressLine{id: "overall progress", text: fmt.Sprintf("%d out of %d tasks", v.running, v.replicas)}
}

// lines is the view top to bottom.
func (v progressView) lines() []progressLine {
	lines := append([]progressLine{v.overall()}, v.slots...)
	if v.verify != "" {
		lines = append(lines, progressLine{id: "verify", text: v.verify})
	}
	return lines
}

func (v progressView) timeoutError(name string, after time.Duration) error {
	var failures []string
	for _, l := range v.slots {
		if l.failed {
			failures = append(failures, l.id+": "+l.text)
		}
	}
	msg := fmt.Sprintf("service %s did not converge within %s: %d out of %d tasks running", name, after, v.running, v.replicas)
	if len(failures) > 0 {
		msg += " (" + strings.Join(failures, "; ") + ")"
	}
	return fmt.Errorf("%s; it goes on in the background, see 'shoal service ps %s'", msg, name)
}

// serviceProgress picks, for each desired slot, the task that stands for it
// and counts the slots whose task is running.
func serviceProgress(svc *api.Service, tasks []*api.Task) progressView {
	replicas := svc.GetSpec().GetReplicas()
	v := progressView{replicas: replicas}
	bySlot := map[uint64]*api.Task{}
	for _, t := range tasks {
		slot := t.GetSlot()
		if slot == 0 || slot > replicas || !upToDate(svc, t) {
			continue
		}
		if cur, ok := bySlot[slot]; !ok || standsBefore(t, cur) {
			bySlot[slot] = t
		}
	}
	for slot := uint64(1); slot <= replicas; slot++ {
		t := bySlot[slot]
		state := t.GetStatus().GetState()
		if t != nil && state == api.TaskState_RUNNING && t.GetDesiredState() <= api.TaskState_RUNNING {
			v.running++
		}
		if replicas > maxProgressBars {
			continue
		}
		line := progressLine{id: fmt.Sprintf("%d/%d", slot, replicas)}
		switch {
		case t == nil:
		case t.GetStatus().GetErr() != "":
			line.text, line.failed = truncError(t.GetStatus().GetErr()), true
		case state <= api.TaskState_RUNNING && t.GetDesiredState() <= api.TaskState_RUNNING:
			line.text, line.step = state.Name(), progressStep(state)
		default:
			line.text = state.Name()
		}
		v.slots = append(v.slots, line)
	}
	return v
}

// upToDate says whether a task runs the service's current spec: made at
// the service's version, or with the same container spec (scaling bumps the
// version without changing the tasks).
func upToDate(svc *api.Service, t *api.Task) bool {
	return t.GetServiceVersion() == svc.GetVersion() || proto.Equal(t.GetSpec(), svc.GetSpec().GetContainer())
}

// standsBefore says whether task a rather than b stands for their slot:
// the one still meant to run (lower desired state), then the newer one.
func standsBefore(a, b *api.Task) bool {
	if a.GetDesiredState() != b.GetDesiredState() {
		return a.GetDesiredState() < b.GetDesiredState()
	}
	return a.GetCreatedUnixNano() > b.GetCreatedUnixNano()
}

// progressStep is Docker's position of a state on the bar (1 to 9; Docker
// has an "allocated" step between new and pending that shoal skips).
func progressStep(s api.TaskState) int {
	if s == api.TaskState_NEW {
		return 1
	}
	return int(s) + 2
}

// truncError keeps a task error on one line of a narrow terminal.
func truncError(msg string) string {
	return ellipsis(strings.ReplaceAll(msg, "\n", " "), maxProgressError)
}

// ---------------------------------------------------------------------------
// Printing

// progressPrinter draws progress views. On a terminal it redraws the block
// in place; otherwise it prints each line when its text changes.
type progressPrinter struct {
	w     io.Writer
	quiet bool
	tty   bool
	width int // terminal columns, 0 if unknown

	drawn   int               // tty: lines of the block on screen
	onShow  string            // tty: the block as last drawn
	printed map[string]string // otherwise: the last text printed per line ID
}

func newProgressPrinter(w io.Writer, quiet bool) *progressPrinter {
	p := &progressPrinter{w: w, quiet: quiet, printed: map[string]string{}}
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
			p.tty, p.width = true, int(ws.Col)
		}
	}
	return p
}

func (p *progressPrinter) show(v progressView) {
	switch {
	case p.quiet:
	case p.tty:
		p.redraw(v.lines())
	default:
		p.printChanged(v)
	}
}

// redraw moves the cursor back to the top of the block drawn last and
// draws the new one over it.
func (p *progressPrinter) redraw(lines []progressLine) {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("\r\x1b[2K")
		b.WriteString(p.format(l))
		b.WriteByte('\n')
	}
	block := b.String()
	if block == p.onShow {
		return
	}
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	io.WriteString(p.w, block+"\x1b[J")
	p.onShow, p.drawn = block, len(lines)
}

// printChanged prints the lines whose text changed. After the first view
// the overall line comes after the slot lines, so that it reads as their
// outcome.
func (p *progressPrinter) printChanged(v progressView) {
	overall := []progressLine{v.overall()}
	lines := slices.Concat(overall, v.slots)
	if len(p.printed) > 0 {
		lines = slices.Concat(v.slots, overall)
	}
	if v.verify != "" {
		lines = append(lines, progressLine{id: "verify", text: v.verify})
	}
	for _, l := range lines {
		if l.text == "" || p.printed[l.id] == l.text {
			continue
		}
		p.printed[l.id] = l.text
		fmt.Fprintln(p.w, p.format(l))
	}
}

// format renders a line; on a terminal wide enough, a task on its way to
// running gets Docker's bar.
func (p *progressPrinter) format(l progressLine) string {
	plain := l.id + ": " + l.text
	if !p.tty || l.step == 0 {
		return plain
	}
	withBar := fmt.Sprintf("%s: %-*s %s", l.id, stateWidth, l.text, progressBar(l.step))
	if p.width > 0 && len(withBar) >= p.width {
		return plain
	}
	return withBar
}

// progressBar draws step out of 9 as Docker does: 50 columns and an arrow.
func progressBar(step int) string {
	filled := min(int(float64(step)/9*100)/2, 50)
	return "[" + strings.Repeat("=", filled) + ">" + strings.Repeat(" ", 50-filled) + "]"
}

// interrupted ends the view after ^C; the service stays as it is.
func (p *progressPrinter) interrupted(name string) error {
	if !p.quiet {
		fmt.Fprintln(p.w, "Operation continuing in background.")
		fmt.Fprintf(p.w, "Use `shoal service ps %s` to check progress.\n", name)
	}
	return nil
}
