package manager

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/raftstore"
)

// meshConfig is the routing mesh as f has it: for every published ingress
// port the running tasks behind it, and a route to each node's task subnet
// through that node. Each task is reached on the target port of its own
// spec, so that during a rolling update that changes it, old and new tasks
// are both reached where they listen. Nil while no service publishes an
// ingress port, so that clusters without one send nodes nothing extra.
func meshConfig(f *raftstore.FSM) *api.NetworkConfig {
	cfg := &api.NetworkConfig{}
	for _, s := range f.Services() {
		if len(api.PortsIn(s.GetSpec().GetContainer().GetPorts(), api.PortConfig_INGRESS)) == 0 {
			continue
		}
		byPort := map[string]*api.IngressPort{}
		for _, t := range f.Tasks(raftstore.TaskFilter{ServiceID: s.Id}) {
			addr := t.GetStatus().GetAddress()
			if t.DesiredState != api.TaskState_RUNNING || t.GetStatus().GetState() != api.TaskState_RUNNING || addr == "" {
				continue
			}
			for _, p := range api.PortsIn(t.GetSpec().GetPorts(), api.PortConfig_INGRESS) {
				proto := cmp.Or(p.Protocol, "tcp")
				key := fmt.Sprintf("%d/%s", p.Published, proto)
				ip := byPort[key]
				if ip == nil {
					ip = &api.IngressPort{Service: s.Spec.Name, Protocol: proto, Published: p.Published, Target: p.Target}
					byPort[key] = ip
				}
				ip.Backends = append(ip.Backends, net.JoinHostPort(addr, strconv.FormatUint(uint64(p.Target), 10)))
			}
		}
		for _, key := range slices.Sorted(maps.Keys(byPort)) {
			slices.Sort(byPort[key].Backends)
			cfg.Ingress = append(cfg.Ingress, byPort[key])
		}
		if len(byPort) == 0 {
			// No task runs yet: the port is published all the same.
			for _, p := range api.PortsIn(s.GetSpec().GetContainer().GetPorts(), api.PortConfig_INGRESS) {
				cfg.Ingress = append(cfg.Ingress, &api.IngressPort{Service: s.Spec.Name, Protocol: cmp.Or(p.Protocol, "tcp"), Published: p.Published, Target: p.Target})
			}
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

// meshCache builds the mesh once per network generation for all sessions,
// and keeps handing out the same pointer while its content stays the same:
// sessions compare pointers to know whether to rebuild their message.
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
	if !c.ok || gen > c.gen {
		if cfg := meshConfig(f); !c.ok || !proto.Equal(cfg, c.cfg) {
			c.cfg = cfg
		}
		c.gen, c.ok = gen, true
	}
	return c.cfg
}
