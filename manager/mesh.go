package manager

import (
	"cmp"
	"slices"
	"sync"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/raftstore"
)

// meshConfig is the routing mesh as f has it: for every published ingress
// port the addresses of the running tasks behind it, and a route to each
// node's task subnet through that node. Nil while no service publishes an
// ingress port, so that clusters without one send nodes nothing extra.
func meshConfig(f *raftstore.FSM) *api.NetworkConfig {
	cfg := &api.NetworkConfig{}
	for _, s := range f.Services() {
		var ports []*api.PortConfig
		for _, p := range s.GetSpec().GetContainer().GetPorts() {
			if p.GetMode() == api.PortConfig_INGRESS {
				ports = append(ports, p)
			}
		}
		if len(ports) == 0 {
			continue
		}
		var backends []string
		for _, t := range f.Tasks(raftstore.TaskFilter{ServiceID: s.Id}) {
			if t.DesiredState == api.TaskState_RUNNING && t.GetStatus().GetState() == api.TaskState_RUNNING && t.GetStatus().GetAddress() != "" {
				backends = append(backends, t.GetStatus().GetAddress())
			}
		}
		slices.Sort(backends)
		for _, p := range ports {
			cfg.Ingress = append(cfg.Ingress, &api.IngressPort{Service: s.Spec.Name, Protocol: cmp.Or(p.Protocol, "tcp"),
				Published: p.Published, Target: p.Target, Backends: backends})
		}
	}
	if len(cfg.Ingress) == 0 {
		return nil
	}
	for _, n := range f.Nodes() {
		if n.Subnet != "" && n.Addr != "" {
			cfg.Routes = append(cfg.Routes, &api.Route{Subnet: n.Subnet, Via: n.Addr, NodeId: n.Id})
		}
	}
	return cfg
}

// meshCache builds the mesh once per network generation for all sessions.
type meshCache struct {
	mu  sync.Mutex
	gen uint64
	cfg *api.NetworkConfig
	ok  bool
}

func (c *meshCache) get(f *raftstore.FSM) *api.NetworkConfig {
	gen := f.NetworkGeneration()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok || c.gen != gen {
		c.cfg, c.gen, c.ok = meshConfig(f), gen, true
	}
	return c.cfg
}
