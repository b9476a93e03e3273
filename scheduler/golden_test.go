package scheduler

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

var update = flag.Bool("update", false, "rewrite the expected output in testdata/*.txt")

// TestGolden runs the placement scripts in testdata/*.txt. A script is a
// list of cases; each case describes nodes and pending tasks, then a line
// "----", then the expected decisions and the nodes' counts afterwards,
// ending at a blank line. Run with -update to rewrite the expectations.
//
// Input lines:
//
//	# comment
//	node <id> [ready|down|disconnected|unknown] [active|pause|drain] [<service>=<n>...] [tasks=<n>]
//	tasks <service> <slot>|<first>-<last> [version=<n>]
//
// A node is ready and active unless told otherwise; its total defaults to
// the sum of its service counts. Tasks are named <service>.<slot>.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt scripts")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

type scriptCase struct {
	line   int      // where the case starts in the file
	input  []string // lines before "----", comments included
	output []string // lines after it
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := parseScript(string(data))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var rewritten strings.Builder
	for i, c := range cases {
		got, err := runCase(c.input)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, c.line, err)
		}
		if *update {
			c.output = got
		} else if !slices.Equal(got, c.output) {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, c.line, caseTitle(c),
				strings.Join(got, "\n"), strings.Join(c.output, "\n"))
		}
		if i > 0 {
			rewritten.WriteString("\n")
		}
		for _, l := range c.input {
			rewritten.WriteString(l + "\n")
		}
		rewritten.WriteString("----\n")
		for _, l := range c.output {
			rewritten.WriteString(l + "\n")
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func caseTitle(c scriptCase) string {
	if len(c.input) > 0 && strings.HasPrefix(c.input[0], "#") {
		return strings.TrimSpace(strings.TrimPrefix(c.input[0], "#"))
	}
	return "case"
}

func parseScript(text string) ([]scriptCase, error) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var cases []scriptCase
	for i := 0; i < len(lines); {
		if strings.TrimSpace(lines[i]) == "" {
			i++
			continue
		}
		c := scriptCase{line: i + 1}
		for i < len(lines) && lines[i] != "----" {
			c.input = append(c.input, lines[i])
			i++
		}
		if i == len(lines) {
			return nil, fmt.Errorf("line %d: case has no \"----\" line", c.line)
		}
		i++ // "----"
		for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
			c.output = append(c.output, lines[i])
			i++
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// runCase builds the nodes and tasks an input describes, schedules them and
// prints the outcome.
func runCase(input []string) ([]string, error) {
	var nodes []*NodeInfo
	var tasks []*api.Task
	for _, line := range input {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch fields[0] {
		case "node":
			n, err := parseNode(fields[1:])
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			nodes = append(nodes, n)
		case "tasks":
			ts, err := parseTasks(fields[1:])
			if err != nil {
				return nil, fmt.Errorf("%q: %w", line, err)
			}
			tasks = append(tasks, ts...)
		default:
			return nil, fmt.Errorf("%q: unknown command %q", line, fields[0])
		}
	}

	placed, unplaced := Schedule(nodes, tasks)
	var out []string
	for _, p := range placed {
		out = append(out, p.TaskID+" -> "+p.NodeID)
	}
	for _, u := range unplaced {
		out = append(out, u.TaskID+" unplaced: "+u.Reason)
	}
	for _, n := range nodes {
		out = append(out, describeNode(n))
	}
	return out, nil
}

func parseNode(args []string) (*NodeInfo, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("node needs an ID")
	}
	n := &NodeInfo{ID: args[0], Hostname: args[0], State: api.NodeState_READY, ServiceTasks: map[string]int{}}
	total := -1
	for _, a := range args[1:] {
		switch a {
		case "ready":
			n.State = api.NodeState_READY
		case "down":
			n.State = api.NodeState_DOWN
		case "disconnected":
			n.State = api.NodeState_DISCONNECTED
		case "unknown":
			n.State = api.NodeState_UNKNOWN
		case "active":
			n.Availability = api.NodeAvailability_ACTIVE
		case "pause":
			n.Availability = api.NodeAvailability_PAUSE
		case "drain":
			n.Availability = api.NodeAvailability_DRAIN
		default:
			key, value, ok := strings.Cut(a, "=")
			count, err := strconv.Atoi(value)
			if !ok || err != nil {
				return nil, fmt.Errorf("bad node argument %q", a)
			}
			if key == "tasks" {
				total = count
			} else {
				n.ServiceTasks[key] = count
			}
		}
	}
	if total < 0 {
		total = 0
		for _, c := range n.ServiceTasks {
			total += c
		}
	}
	n.Tasks = total
	return n, nil
}

func parseTasks(args []string) ([]*api.Task, error) {
	if len(args) < 2 {
		return nil, fmt.Errorf("tasks needs a service and slots")
	}
	svc := args[0]
	first, last, isRange := strings.Cut(args[1], "-")
	if !isRange {
		last = first
	}
	from, err1 := strconv.ParseUint(first, 10, 64)
	to, err2 := strconv.ParseUint(last, 10, 64)
	if err1 != nil || err2 != nil || from > to {
		return nil, fmt.Errorf("bad slots %q", args[1])
	}
	var version uint64
	for _, a := range args[2:] {
		v, ok := strings.CutPrefix(a, "version=")
		n, err := strconv.ParseUint(v, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad tasks argument %q", a)
		}
		version = n
	}
	var tasks []*api.Task
	for slot := from; slot <= to; slot++ {
		tasks = append(tasks, &api.Task{
			Id:             fmt.Sprintf("%s.%d", svc, slot),
			ServiceId:      svc,
			ServiceName:    svc,
			Slot:           slot,
			ServiceVersion: version,
			DesiredState:   api.TaskState_RUNNING,
			Status:         &api.TaskStatus{State: api.TaskState_PENDING},
		})
	}
	return tasks, nil
}

// describeNode prints a node's counts: "n1: tasks=3 api=1 web=2".
func describeNode(n *NodeInfo) string {
	s := fmt.Sprintf("%s: tasks=%d", n.ID, n.Tasks)
	for _, svc := range slices.Sorted(maps.Keys(n.ServiceTasks)) {
		if c := n.ServiceTasks[svc]; c != 0 {
			s += fmt.Sprintf(" %s=%d", svc, c)
		}
	}
	return s
}
