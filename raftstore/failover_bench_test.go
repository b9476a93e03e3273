package raftstore

import (
	"context"
	"slices"
	"testing"
	"time"
)

// BenchmarkFailover measures, with DefaultConfig's timings, the time from
// killing the leader of three servers to the first write a survivor
// accepts. It backs the numbers in DESIGN.md:
//
//	go test -run - -bench Failover -benchtime 20x ./raftstore/
func BenchmarkFailover(b *testing.B) {
	var took []time.Duration
	for range b.N {
		b.StopTimer()
		c := startCluster(b, 3, defaultTimings)
		b.StartTimer()
		start := time.Now()
		old := c.leader(-1, 10*time.Second)
		c.kill(old)
		next := c.leader(old, 10*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := c.stores[next].Apply(ctx, addNode("x", "x")); err != nil {
			b.Fatal(err)
		}
		cancel()
		took = append(took, time.Since(start))
		b.StopTimer()
		for i := range c.stores {
			c.kill(i)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "median-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
}
