package manager

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/raftstore"
)

// Metrics are what a manager exports for Prometheus. They outlive any one
// manager of the daemon (a node may be demoted and promoted again):
// gauges are read at scrape time from whatever manager runs then; the
// histograms and the election counter are fed as things happen.
type Metrics struct {
	get        func() *Manager
	commit     prometheus.Histogram
	scheduling prometheus.Histogram
	elections  prometheus.Counter

	raftState, raftTerm, raftIndex, tasks, nodes *prometheus.Desc
}

// NewMetrics registers the metrics of whatever manager get returns.
func NewMetrics(reg prometheus.Registerer, get func() *Manager) *Metrics {
	x := &Metrics{
		get: get,
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shoal_raft_commit_seconds", Help: "Time from submitting a Raft entry on the leader to its commit and apply.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		scheduling: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shoal_task_scheduling_seconds", Help: "Time from a task's creation to its running, as the manager saw it.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		elections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoal_raft_elections_total", Help: "Leaders elected, as this manager saw them.",
		}),
		raftState: prometheus.NewDesc("shoal_raft_state", "1 for this manager's Raft state.", []string{"state"}, nil),
		raftTerm:  prometheus.NewDesc("shoal_raft_term", "This manager's Raft term.", nil, nil),
		raftIndex: prometheus.NewDesc("shoal_raft_index", "This manager's Raft log indexes.", []string{"kind"}, nil),
		tasks:     prometheus.NewDesc("shoal_tasks", "Tasks by state.", []string{"state"}, nil),
		nodes:     prometheus.NewDesc("shoal_nodes", "Nodes by status.", []string{"status"}, nil),
	}
	reg.MustRegister(x.commit, x.scheduling, x.elections, x)
	return x
}

// Describe sends the descriptions of the gauges read at scrape time.
func (x *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{x.raftState, x.raftTerm, x.raftIndex, x.tasks, x.nodes} {
		ch <- d
	}
}

// Collect reads the gauges from the manager running now, if any.
func (x *Metrics) Collect(ch chan<- prometheus.Metric) {
	m := x.get()
	if m == nil {
		return
	}
	info := m.store.Info()
	for _, s := range []string{"Leader", "Follower", "Candidate"} {
		v := 0.0
		if info.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(x.raftState, prometheus.GaugeValue, v, strings.ToLower(s))
	}
	ch <- prometheus.MustNewConstMetric(x.raftTerm, prometheus.GaugeValue, float64(info.Term))
	for kind, v := range map[string]uint64{"last_log": info.LastLogIndex, "commit": info.CommitIndex, "applied": info.AppliedIndex} {
		ch <- prometheus.MustNewConstMetric(x.raftIndex, prometheus.GaugeValue, float64(v), kind)
	}
	f := m.store.FSM()
	byState := map[string]float64{}
	for s := api.TaskState_NEW; s <= api.TaskState_ORPHANED; s++ {
		byState[s.Name()] = 0
	}
	for _, t := range f.Tasks(raftstore.TaskFilter{}) {
		byState[t.GetStatus().GetState().Name()]++
	}
	for s, v := range byState {
		ch <- prometheus.MustNewConstMetric(x.tasks, prometheus.GaugeValue, v, s)
	}
	byStatus := map[string]float64{"ready": 0, "down": 0, "unknown": 0, "disconnected": 0}
	for _, n := range f.Nodes() {
		byStatus[n.State.Name()]++
	}
	for s, v := range byStatus {
		ch <- prometheus.MustNewConstMetric(x.nodes, prometheus.GaugeValue, v, s)
	}
}

// observe feeds the histograms and the counter from cluster events.
func (x *Metrics) observe(evs []*api.Event) {
	for _, e := range evs {
		switch {
		case e.Type == "raft" && e.Action == "elect":
			x.elections.Inc()
		case e.Type == "task" && e.Attributes["running.after"] != "":
			if d, err := time.ParseDuration(e.Attributes["running.after"]); err == nil {
				x.scheduling.Observe(d.Seconds())
			}
		}
	}
}
