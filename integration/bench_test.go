package integration

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/integration/clustertest"
)

// BenchmarkFailover kills -9 the leader of three managers, again and again,
// and measures the time from the kill until a survivor accepts a write.
// SHOAL_BENCH_ROUNDS sets the number of kills (default 10).
//
//	make bench-failover
func BenchmarkFailover(b *testing.B) {
	rounds := 10
	if v, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	for range b.N {
		c := newCluster(b, 3)
		_, manager := c.init(1)
		c.join(2, manager, 1)
		c.join(3, manager, 1)
		all := map[string]want{"node-01": {"Ready", ""}, "node-02": {"Ready", ""}, "node-03": {"Ready", ""}}
		var took []time.Duration
		for round := range rounds {
			old := c.leader(1+round%3, settle)
			for name := range all {
				all[name] = want{"Ready", "Reachable"}
			}
			all[fmt.Sprintf("node-%02d", old)] = want{"Ready", "Leader"}
			c.waitNodes(old, settle, all)

			survivor := 1 + old%3
			c.node(old).Kill(b)
			killed := time.Now()
			clustertest.WaitFor(b, failover, "a write through a survivor", func() error { return c.write(survivor) })
			took = append(took, time.Since(killed))
			b.Logf("round %d: killed node-%02d, write accepted after %s", round+1, old, took[len(took)-1].Round(time.Millisecond))
			c.node(old).Restart(b)
		}
		slices.Sort(took)
		median := took[len(took)/2]
		if len(took)%2 == 0 {
			median = (took[len(took)/2-1] + took[len(took)/2]) / 2
		}
		fmt.Printf("failover over %d kills of the leader (3 managers): median %s, max %s, min %s\n",
			len(took), median.Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), took[0].Round(time.Millisecond))
		b.ReportMetric(median.Seconds(), "median-s")
		b.ReportMetric(took[len(took)-1].Seconds(), "max-s")
	}
}
