package manager

import (
	"slices"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/raftstore"
)

func apply(t *testing.T, f *raftstore.FSM, index uint64, cmd *api.Command) {
	t.Helper()
	data, err := proto.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if resp := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: data}); resp != nil {
		if err, ok := resp.(error); ok {
			t.Fatalf("apply %v: %v", cmd, err)
		}
	}
}

// The mesh lists, for each ingress port, the running tasks behind it, and a
// route to every node's subnet; it is nil while no port is published in
// ingress mode, and the cache builds it anew only when the FSM says the
// network may have changed.
func TestMeshConfig(t *testing.T) {
	f := raftstore.NewFSM()
	node := func(id, addr, subnet string) *api.Command {
		return &api.Command{Op: &api.Command_AddNode{AddNode: &api.AddNode{Node: &api.Node{Id: id, Hostname: id, Addr: addr, Subnet: subnet}}}}
	}
	apply(t, f, 1, &api.Command{Op: &api.Command_InitCluster{InitCluster: &api.InitCluster{Cluster: &api.Cluster{Id: "c"},
		Node: &api.Node{Id: "n1", Hostname: "n1", Addr: "192.0.2.1", Subnet: "10.0.1.0/24"}}}})
	apply(t, f, 2, node("n2", "192.0.2.2", "10.0.2.0/24"))
	svc := func(id, name string, mode api.PortConfig_PublishMode) *api.Command {
		return &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: &api.Service{Id: id, Version: 1,
			Spec: &api.ServiceSpec{Name: name, Container: &api.ContainerSpec{Image: "nginx",
				Ports: []*api.PortConfig{{Published: 8080, Target: 80, Protocol: "tcp", Mode: mode}}}}}}}}
	}
	apply(t, f, 3, svc("s1", "hostonly", api.PortConfig_HOST))
	var cache meshCache
	if cfg := cache.get(f); cfg != nil {
		t.Fatalf("a mesh without ingress ports: %v", cfg)
	}

	apply(t, f, 4, svc("s2", "web", api.PortConfig_INGRESS))
	task := func(id, node string, state api.TaskState, addr string) *api.Task {
		return &api.Task{Id: id, ServiceId: "s2", NodeId: node, DesiredState: api.TaskState_RUNNING, Status: &api.TaskStatus{State: state, Address: addr},
			Spec: &api.ContainerSpec{Image: "nginx", Ports: []*api.PortConfig{{Published: 8080, Target: 80, Protocol: "tcp"}}}}
	}
	apply(t, f, 5, &api.Command{Op: &api.Command_Tasks{Tasks: &api.TaskBatch{Put: []*api.Task{
		task("t1", "n1", api.TaskState_RUNNING, "10.0.1.4"),
		task("t2", "n2", api.TaskState_STARTING, ""),
	}}}})
	want := &api.NetworkConfig{
		Routes:  []*api.Route{{Subnet: "10.0.1.0/24", Via: "192.0.2.1", NodeId: "n1"}, {Subnet: "10.0.2.0/24", Via: "192.0.2.2", NodeId: "n2"}},
		Ingress: []*api.IngressPort{{Service: "web", Protocol: "tcp", Published: 8080, Target: 80, Backends: []string{"10.0.1.4:80"}}},
	}
	first := cache.get(f)
	if !proto.Equal(first, want) {
		t.Fatalf("mesh:\n%v\nwant:\n%v", first, want)
	}
	if cache.get(f) != first {
		t.Error("the cache built the mesh again without a change")
	}
	// A change elsewhere (a node's status) builds the same mesh: the
	// sessions get the same pointer, and rebuild nothing.
	apply(t, f, 6, &api.Command{Op: &api.Command_SetNodeStatus{SetNodeStatus: &api.SetNodeStatus{Statuses: []*api.NodeStatus{{Id: "n2", State: api.NodeState_READY}}}}})
	if cache.get(f) != first {
		t.Error("an unchanged mesh came back as a new pointer")
	}

	// t2 starts running: it joins the backends.
	apply(t, f, 7, &api.Command{Op: &api.Command_Tasks{Tasks: &api.TaskBatch{Status: []*api.TaskStatusUpdate{
		{TaskId: "t2", Status: &api.TaskStatus{State: api.TaskState_RUNNING, Address: "10.0.2.4"}}}}}})
	want.Ingress[0].Backends = []string{"10.0.1.4:80", "10.0.2.4:80"}
	if got := cache.get(f); !proto.Equal(got, want) {
		t.Fatalf("mesh after t2 runs:\n%v\nwant:\n%v", got, want)
	}
}

// During a rolling update that changes the target port, each task is
// reached where its own spec says it listens.
func TestMeshConfigTargetsPerTask(t *testing.T) {
	f := raftstore.NewFSM()
	apply(t, f, 1, &api.Command{Op: &api.Command_InitCluster{InitCluster: &api.InitCluster{Cluster: &api.Cluster{Id: "c"},
		Node: &api.Node{Id: "n1", Hostname: "n1", Addr: "192.0.2.1", Subnet: "10.0.1.0/24"}}}})
	port := func(target uint32) *api.ContainerSpec {
		return &api.ContainerSpec{Image: "nginx", Ports: []*api.PortConfig{{Published: 8080, Target: target, Protocol: "tcp"}}}
	}
	apply(t, f, 2, &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: &api.Service{Id: "s", Version: 1,
		Spec: &api.ServiceSpec{Name: "web", Container: port(81)}}}}})
	running := func(id, addr string, spec *api.ContainerSpec) *api.Task {
		return &api.Task{Id: id, ServiceId: "s", NodeId: "n1", DesiredState: api.TaskState_RUNNING, Spec: spec,
			Status: &api.TaskStatus{State: api.TaskState_RUNNING, Address: addr}}
	}
	apply(t, f, 3, &api.Command{Op: &api.Command_Tasks{Tasks: &api.TaskBatch{Put: []*api.Task{
		running("old", "10.0.1.4", port(80)), running("new", "10.0.1.5", port(81))}}}})
	cfg := meshConfig(f)
	if len(cfg.GetIngress()) != 1 || !slices.Equal(cfg.Ingress[0].Backends, []string{"10.0.1.4:80", "10.0.1.5:81"}) {
		t.Fatalf("mesh during a target port change: %v", cfg)
	}
}
