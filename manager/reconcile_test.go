package manager

import (
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

func TestPlanCreatesAndPlacesInOneBatch(t *testing.T) {
	now := time.Unix(1000, 0)
	cl := &api.Cluster{Settings: &api.ClusterSettings{TaskHistoryLimit: 5}}
	nodes := []*api.Node{
		{Id: "n1", State: api.NodeState_READY},
		{Id: "n2", State: api.NodeState_READY},
		{Id: "n3", State: api.NodeState_READY, Availability: api.NodeAvailability_DRAIN},
	}
	svc := &api.Service{Id: "s1", Version: 1, Spec: &api.ServiceSpec{Name: "web", Replicas: 4,
		Container: &api.ContainerSpec{Image: "nginx"}, Restart: &api.RestartPolicy{DelayNs: int64(5 * time.Second)}}}

	batch, _ := plan(cl, nodes, []*api.Service{svc}, nil, now)
	if batch == nil || len(batch.Put) != 4 {
		t.Fatalf("plan for 4 replicas on an empty cluster: %v", batch)
	}
	perNode := map[string]int{}
	for _, task := range batch.Put {
		if task.GetStatus().GetState() != api.TaskState_ASSIGNED || task.NodeId == "" {
			t.Errorf("task %s of slot %d is not assigned: %v", task.Id, task.Slot, task.Status)
		}
		perNode[task.NodeId]++
	}
	if perNode["n1"] != 2 || perNode["n2"] != 2 || perNode["n3"] != 0 {
		t.Errorf("placement %v: want 2 on each active node, none on the drained one", perNode)
	}

	// Running as planned, nothing more to do.
	for _, task := range batch.Put {
		task.Status = &api.TaskStatus{State: api.TaskState_RUNNING}
	}
	if again, _ := plan(cl, nodes, []*api.Service{svc}, batch.Put, now); again != nil {
		t.Errorf("a converged service still has a plan: %v", again)
	}

	// n2 drained: its two tasks are stopped and replaced on n1 at once.
	nodes[1].Availability = api.NodeAvailability_DRAIN
	moved, _ := plan(cl, nodes, []*api.Service{svc}, batch.Put, now)
	if moved == nil || len(moved.Desired) != 2 || len(moved.Put) != 2 {
		t.Fatalf("plan after draining n2: %v", moved)
	}
	for _, task := range moved.Put {
		if task.NodeId != "n1" {
			t.Errorf("a replacement went to %s", task.NodeId)
		}
	}

	// Nowhere to go: the task waits, saying why.
	nodes[0].Availability = api.NodeAvailability_PAUSE
	stuck, _ := plan(cl, nodes, []*api.Service{svc}, nil, now)
	if stuck == nil || len(stuck.Put) != 4 {
		t.Fatalf("plan with no active node: %v", stuck)
	}
	for _, task := range stuck.Put {
		if task.NodeId != "" || task.GetStatus().GetErr() == "" {
			t.Errorf("unplaceable task %v: want pending with a reason", task)
		}
	}
}
