// Package history is what chaosclient records and how TestChaos judges it:
// the operation lines, a register model of each service's replica count for
// the porcupine linearizability checker, and two direct checks (stale reads,
// a final value that lost an acknowledged write) that say in words what went
// wrong.
package history

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Kinds of lines.
const (
	Start = "start" // Value: the client's start in Unix nanoseconds
	Write = "write" // UpdateService(Service, replicas=Value)
	Read  = "read"  // GetService(Service).spec.replicas, returned in Value
	Final = "final" // the value all managers agreed on at the end
)

// NotFound is the value of a read answered "no such service".
const NotFound = -1

// Op is one line of chaosclient's output. Call and Return are nanoseconds
// since the client started, on one monotonic clock.
type Op struct {
	Client  int    `json:"client"`
	Service string `json:"service"`
	Kind    string `json:"kind"`
	Value   int64  `json:"value"`
	Call    int64  `json:"call"`
	Return  int64  `json:"return"`
	// OK: the call succeeded.
	OK bool `json:"ok"`
	// Unknown marks a failed write that may still have taken effect.
	Unknown bool   `json:"unknown,omitempty"`
	Manager string `json:"manager,omitempty"`
	Err     string `json:"err,omitempty"`
}

// input is a porcupine input: a write of Value, or a read.
type input struct {
	Service string
	Write   bool
	Value   int64
}

// Model makes each service a register of its replica count, starting at
// initial. Operations are partitioned by service.
func Model(initial int64) porcupine.Model {
	return porcupine.Model{
		Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			for _, o := range ops {
				s := o.Input.(input).Service
				by[s] = append(by[s], o)
			}
			var out [][]porcupine.Operation
			for _, s := range slices.Sorted(maps.Keys(by)) {
				out = append(out, by[s])
			}
			return out
		},
		Init: func() any { return initial },
		Step: func(state, in, output any) (bool, any) {
			if in := in.(input); in.Write {
				return true, in.Value
			}
			return output.(int64) == state.(int64), state
		},
		Hash: func(state any) uint64 { return uint64(state.(int64)) },
		DescribeOperation: func(in, output any) string {
			if in := in.(input); in.Write {
				return fmt.Sprintf("%s=%d", in.Service, in.Value)
			}
			return fmt.Sprintf("%s → %d", in.(input).Service, output.(int64))
		},
		DescribeState:             func(state any) string { return strconv.FormatInt(state.(int64), 10) },
		DescribeOperationMetadata: func(info any) string { return fmt.Sprint(info) },
	}
}

// Operations turns a history into porcupine operations: an acknowledged
// write or an answered read as it happened; a write of unknown outcome with
// no end, since it may take effect at any time after its call, or never; and
// nothing for failed reads and refused writes, which changed nothing.
func Operations(h []Op) []porcupine.Operation {
	var ops []porcupine.Operation
	for _, o := range h {
		if (o.Kind != Write && o.Kind != Read) || (!o.OK && !o.Unknown) {
			continue
		}
		op := porcupine.Operation{
			ClientId: o.Client,
			Input:    input{Service: o.Service, Write: o.Kind == Write, Value: o.Value},
			Call:     o.Call,
			Output:   o.Value,
			Return:   o.Return,
			Metadata: o.Manager,
		}
		if o.Kind == Write {
			op.Output = int64(0)
		}
		if o.Unknown {
			op.Return = math.MaxInt64
			op.Metadata = fmt.Sprintf("%s, outcome unknown: %s", o.Manager, o.Err)
		}
		ops = append(ops, op)
	}
	return ops
}

// StaleReads finds reads that no linearization can explain on their own: a
// read returned v, a write of another value was acknowledged before the read
// began, and no write of v (acknowledged or of unknown outcome) can have
// taken effect between the start of that write and the end of the read.
// Each one proves the history is not linearizable and says which manager
// answered what, which porcupine's search cannot always do in time. Creating
// the service counts as an acknowledged write of initial before everything.
// Violations that take several reads to show are left to porcupine.
func StaleReads(h []Op, initial int64) []string {
	var out []string
	for _, r := range h {
		if r.Kind != Read || !r.OK {
			continue
		}
		// Of the acknowledged writes that ended before the read began, the
		// one that began last leaves the least room.
		last := Op{Kind: Write, Value: initial, Call: -1, Return: -1, OK: true, Manager: "service create"}
		for _, w := range h {
			if w.Service == r.Service && w.Kind == Write && w.OK && w.Return < r.Call && w.Call > last.Call {
				last = w
			}
		}
		if last.Value == r.Value || explained(h, r, last) {
			continue
		}
		read, never := strconv.FormatInt(r.Value, 10), "no write of "+strconv.FormatInt(r.Value, 10)+" can have come between"
		if r.Value == NotFound {
			read, never = "no such service", "nothing removed it"
		}
		out = append(out, fmt.Sprintf("%s: %s answered %s at %s-%s, after the write of %d acknowledged by %s at %s-%s, and %s",
			r.Service, r.Manager, read, At(r.Call), At(r.Return), last.Value, last.Manager, At(last.Call), At(last.Return), never))
	}
	return out
}

// explained tells whether a write of what r read can have taken effect after
// the start of write last and before the end of r.
func explained(h []Op, r, last Op) bool {
	for _, w := range h {
		end := w.Return
		if w.Unknown {
			end = math.MaxInt64
		}
		if w.Service == r.Service && w.Kind == Write && (w.OK || w.Unknown) && w.Value == r.Value &&
			w.Call < r.Return && end > last.Call {
			return true
		}
	}
	return false
}

// CheckFinal checks that a service's final value keeps every acknowledged
// write: it was set by a write (acknowledged, or of unknown outcome) that no
// acknowledged write began after the end of; or, if no write was
// acknowledged, it may still be initial.
func CheckFinal(h []Op, service string, initial, final int64) error {
	var last *Op // the acknowledged write that began last
	for i, o := range h {
		if o.Service == service && o.Kind == Write && o.OK && (last == nil || o.Call > last.Call) {
			last = &h[i]
		}
	}
	if last == nil {
		if final == initial {
			return nil
		}
		for _, o := range h {
			if o.Service == service && o.Kind == Write && o.Unknown && o.Value == final {
				return nil
			}
		}
		return fmt.Errorf("%s ended with %d replicas; it started with %d and no write set %d", service, final, initial, final)
	}
	for _, o := range h {
		if o.Service == service && o.Kind == Write && o.Value == final && (o.Unknown || (o.OK && o.Return >= last.Call)) {
			return nil
		}
	}
	return fmt.Errorf("%s ended with %d replicas; the last acknowledged write (through %s, at %s) set %d, and no write that may have come after it set %d",
		service, final, last.Manager, At(last.Call), last.Value, final)
}

// Stats counts the operations by manager, kind and outcome, one line each.
func Stats(h []Op) string {
	counts := map[string]int{}
	for _, o := range h {
		outcome := "ok"
		switch {
		case o.Unknown:
			outcome = "unknown"
		case !o.OK:
			outcome = "failed"
		}
		counts[fmt.Sprintf("%s %s %s", o.Manager, o.Kind, outcome)]++
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, "%-28s %5d\n", k, counts[k])
	}
	return b.String()
}

// At formats a time of the client's clock.
func At(ns int64) string {
	return strconv.FormatFloat(float64(ns)/1e9, 'f', 3, 64) + "s"
}
