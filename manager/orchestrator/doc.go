// Package orchestrator owns the decisions that keep a replicated service's
// slots filled: scaling up and down, restarting ended tasks by the service's
// restart policy, replacing tasks on nodes that went down, rolling updates,
// and trimming each slot's task history.
//
// Its functions are pure: Reconcile and Remove take a View (one service, its
// tasks, which nodes are down, the time) and return a Plan of task changes.
// The leader's loop in package manager builds the View from the FSM, writes
// the Plan through Raft as one api.TaskBatch (Plan.Batch), and calls again
// when the state changes or when Plan.Wake is reached.
//
// It must not read the clock, generate random IDs, touch the store or talk to
// nodes: time comes in the View, IDs from the caller's function, and placing
// tasks on nodes belongs to the scheduler. DESIGN.md records how it tells a
// failure from a requested stop, and why.
package orchestrator
