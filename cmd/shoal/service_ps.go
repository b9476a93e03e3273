package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

// timeNow is the clock CURRENT STATE is measured against; tests fix it.
var timeNow = time.Now

// maxTaskError is how much of a task error `service ps` shows unless
// --no-trunc, as in Docker.
const maxTaskError = 30

func newServicePsCommand(c *cli) *cobra.Command {
	return newTaskListCommand(c, &cobra.Command{
		Use:   "ps [OPTIONS] SERVICE [SERVICE...]",
		Short: "List the tasks of one or more services",
		Args:  minArgs(1),
	}, listServiceTasks)
}

// newTaskListCommand completes cmd as a task listing (`service ps`, `node
// ps`): list fetches the tasks its arguments name, and the flags filter and
// format them as Docker's do.
func newTaskListCommand(c *cli, cmd *cobra.Command, list func(context.Context, *daemonConn, []string) (serviceTasks, []string, error)) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	filters := filterValue{}
	cmd.RunE = func(cmd *cobra.Command, refs []string) error {
		filter, err := newTaskFilter(filters)
		if err != nil {
			return err
		}
		d, err := c.connect()
		if err != nil {
			return err
		}
		defer d.Close()
		if err := filter.resolveSelf(cmd.Context(), d); err != nil {
			return err
		}
		tasks, notFound, err := list(cmd.Context(), d, refs)
		if err != nil {
			return err
		}
		tasks.tasks = slices.DeleteFunc(tasks.tasks, func(t *api.Task) bool { return !filter.match(t, tasks) })
		// As in Docker, -q prints whole IDs, and only tables indent the
		// older tasks of a slot.
		_, isTable := templateText(taskListing.template(format, quiet))
		if err := writeListing(c.out, taskListing, format, quiet, tasks.rows(!noTrunc && !quiet, isTable)); err != nil {
			return err
		}
		if len(notFound) > 0 {
			return errors.New(strings.Join(notFound, "\n"))
		}
		return nil
	}
	flags := cmd.Flags()
	flags.BoolVarP(&quiet, "quiet", "q", false, "Only display task IDs")
	flags.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	addListFormatFlag(flags, &format)
	flags.VarP(filters, "filter", "f", "Filter output based on conditions provided (desired-state=running|shutdown|accepted, id=, name=, node=)")
	return cmd
}

// serviceTasks is what `service ps` lists: the tasks of some services, the
// names of those services and of the nodes the tasks run on.
type serviceTasks struct {
	tasks        []*api.Task
	serviceNames map[string]string // service ID to name
	nodeNames    map[string]string // node ID to hostname
}

// listServiceTasks fetches the tasks of each service named by refs (ID, ID
// prefix or name). Services that do not exist are returned as Docker's
// "no such service" lines; if none exists that is the error.
func listServiceTasks(ctx context.Context, d *daemonConn, refs []string) (serviceTasks, []string, error) {
	list := serviceTasks{serviceNames: map[string]string{}, nodeNames: map[string]string{}}
	var notFound []string
	for _, ref := range refs {
		svc, err := d.Control.GetService(ctx, &api.GetServiceRequest{Ref: ref})
		if status.Code(err) == codes.NotFound {
			notFound = append(notFound, "no such service: "+ref)
			continue
		}
		if err != nil {
			return list, nil, err
		}
		if _, seen := list.serviceNames[svc.GetId()]; seen {
			continue
		}
		list.serviceNames[svc.GetId()] = svc.GetSpec().GetName()
		resp, err := d.Control.ListTasks(ctx, &api.ListTasksRequest{Service: svc.GetId()})
		if err != nil {
			return list, nil, err
		}
		list.tasks = append(list.tasks, resp.GetTasks()...)
		for id, name := range resp.GetNodeNames() {
			list.nodeNames[id] = name
		}
	}
	if len(list.serviceNames) == 0 {
		return list, nil, errors.New(strings.Join(notFound, "\n"))
	}
	return list, notFound, nil
}

// taskName is Docker's name for a task: service.slot.
func (l serviceTasks) taskName(t *api.Task) string {
	service := l.serviceNames[t.GetServiceId()]
	if service == "" {
		service = t.GetServiceName()
	}
	if t.GetSlot() == 0 {
		return service + "." + t.GetNodeId()
	}
	return service + "." + strconv.FormatUint(t.GetSlot(), 10)
}

func (l serviceTasks) nodeName(t *api.Task) string {
	if name, ok := l.nodeNames[t.GetNodeId()]; ok {
		return name
	}
	return t.GetNodeId()
}

// rows sorts the tasks as Docker does, by name and newest first within a
// slot, and indents the older tasks of a slot in a table.
func (l serviceTasks) rows(trunc, indent bool) []taskRow {
	type named struct {
		name string
		task *api.Task
	}
	tasks := make([]named, 0, len(l.tasks))
	for _, t := range l.tasks {
		tasks = append(tasks, named{l.taskName(t), t})
	}
	slices.SortStableFunc(tasks, func(a, b named) int {
		switch {
		case naturalLess(a.name, b.name):
			return -1
		case naturalLess(b.name, a.name):
			return 1
		}
		return -cmpInt64(a.task.GetCreatedUnixNano(), b.task.GetCreatedUnixNano())
	})
	rows := make([]taskRow, 0, len(tasks))
	prev := ""
	for _, nt := range tasks {
		name := nt.name
		if indent && name == prev {
			name = ` \_ ` + name
		}
		prev = nt.name
		rows = append(rows, newTaskRow(nt.task, name, l.nodeName(nt.task), trunc))
	}
	return rows
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ---------------------------------------------------------------------------
// Task rows for `service ps`

var taskListing = listing{
	table: "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t" +
		"{{.CurrentState}}\t{{.Error}}\t{{.Ports}}",
	headers: map[string]string{
		"ID":           "ID",
		"Name":         "NAME",
		"Image":        "IMAGE",
		"Node":         "NODE",
		"DesiredState": "DESIRED STATE",
		"CurrentState": "CURRENT STATE",
		"Error":        "ERROR",
		"Ports":        "PORTS",
	},
}

// taskRow is one line of `service ps`; its fields are the names --format
// templates use, as in Docker.
type taskRow struct {
	ID           string
	Name         string
	Image        string
	Node         string
	DesiredState string // Running, Shutdown, ...
	CurrentState string // "Running 5 seconds ago"
	Error        string // quoted
	Ports        string
}

func (r taskRow) MarshalJSON() ([]byte, error) { return marshalRow(r) }

func newTaskRow(t *api.Task, name, node string, trunc bool) taskRow {
	st := t.GetStatus()
	row := taskRow{
		ID:           t.GetId(),
		Name:         name,
		Image:        t.GetSpec().GetImage(),
		Node:         node,
		DesiredState: prettyPrint(t.GetDesiredState().Name()),
		CurrentState: prettyPrint(st.GetState().Name()),
	}
	if st.GetUnixNano() != 0 {
		ago := strings.ToLower(humanDuration(timeNow().Sub(time.Unix(0, st.GetUnixNano()))))
		row.CurrentState += " " + ago + " ago"
	}
	taskErr := strings.ReplaceAll(st.GetErr(), "\n", " ")
	if trunc {
		row.ID = truncateID(row.ID)
		row.Image = displayImage(row.Image)
		taskErr = ellipsis(taskErr, maxTaskError)
	}
	if taskErr != "" {
		row.Error = `"` + taskErr + `"`
	}
	if st.GetState() == api.TaskState_RUNNING {
		row.Ports = portsText(api.PortsIn(t.GetSpec().GetPorts(), api.PortConfig_HOST)) // open on the task's node
	}
	return row
}

// truncateID cuts a service or task ID to Docker's 12 characters.
func truncateID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ellipsis cuts s to n characters, the last one an ellipsis.
func ellipsis(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// displayImage shortens a tagged image reference for a table as Docker
// does: without its digest, and without Docker Hub's "docker.io/library/".
func displayImage(image string) string {
	name, _, _ := strings.Cut(image, "@")
	lastSlash := strings.LastIndexByte(name, '/')
	if !strings.Contains(name[lastSlash+1:], ":") {
		return image
	}
	if rest, ok := strings.CutPrefix(name, "docker.io/"); ok {
		name = rest
		if rest, ok := strings.CutPrefix(name, "library/"); ok && !strings.Contains(rest, "/") {
			name = rest
		}
	}
	return name
}

// ---------------------------------------------------------------------------
// --filter for `service ps`

// taskFilter keeps the tasks that match every key given, and for each key
// one of its values.
type taskFilter struct {
	desired []api.TaskState
	ids     []string // task ID prefixes
	names   []string // task name prefixes
	nodes   []string // node ID, ID prefix or hostname; "self"
}

func newTaskFilter(f filterValue) (*taskFilter, error) {
	tf := &taskFilter{}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		values := f[key]
		switch key {
		case "desired-state":
			for _, v := range values {
				s, ok := parseTaskState(v)
				if !ok {
					return nil, fmt.Errorf("invalid desired-state filter: '%s' (use running, shutdown or accepted)", v)
				}
				tf.desired = append(tf.desired, s)
			}
		case "id":
			tf.ids = values
		case "name":
			tf.names = values
		case "node":
			tf.nodes = values
		default:
			return nil, fmt.Errorf("invalid filter '%s'", key)
		}
	}
	return tf, nil
}

func parseTaskState(s string) (api.TaskState, bool) {
	for v := range api.TaskState_name {
		if st := api.TaskState(v); st.Name() == strings.ToLower(s) {
			return st, true
		}
	}
	return 0, false
}

// resolveSelf turns node=self into the ID of the node the CLI talks to.
func (f *taskFilter) resolveSelf(ctx context.Context, d *daemonConn) error {
	i := slices.Index(f.nodes, "self")
	if i < 0 {
		return nil
	}
	info, err := d.Swarm.Info(ctx, &api.InfoRequest{})
	if err != nil {
		return err
	}
	f.nodes[i] = info.GetNodeId()
	return nil
}

func (f *taskFilter) match(t *api.Task, l serviceTasks) bool {
	if len(f.desired) > 0 && !slices.Contains(f.desired, t.GetDesiredState()) {
		return false
	}
	if len(f.ids) > 0 && !slices.ContainsFunc(f.ids, func(p string) bool { return strings.HasPrefix(t.GetId(), p) }) {
		return false
	}
	// Docker matches name prefixes against service.slot.taskid.
	fullName := l.taskName(t) + "." + t.GetId()
	if len(f.names) > 0 && !slices.ContainsFunc(f.names, func(p string) bool { return strings.HasPrefix(fullName, p) }) {
		return false
	}
	if len(f.nodes) > 0 {
		id := t.GetNodeId()
		return id != "" && slices.ContainsFunc(f.nodes, func(n string) bool {
			return n != "" && (strings.HasPrefix(id, n) || l.nodeNames[id] == n)
		})
	}
	return true
}
