package manager

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/manager/orchestrator"
	"github.com/shoal-dev/shoal/pki"
	"github.com/shoal-dev/shoal/raftstore"
)

// clusterPort is the managers' default port, which no ingress port may take.
const clusterPort = 2377

// maxReplicas bounds a service's size; the orchestrator walks every slot.
const maxReplicas = 100000

// defaultStopGrace is a service's stop grace period where its spec is
// silent, as Docker's.
const defaultStopGrace = 10 * time.Second

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

func (c *control) CreateService(ctx context.Context, req *api.CreateServiceRequest) (*api.Service, error) {
	spec := proto.CloneOf(req.GetSpec())
	if spec == nil || spec.GetContainer().GetImage() == "" {
		return nil, status.Error(codes.InvalidArgument, "a service needs an image: shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]")
	}
	id := pki.NewID()
	if spec.Name == "" {
		spec.Name = id[:12]
	}
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	if err := c.m.portsFree(spec, ""); err != nil {
		return nil, err
	}
	now := time.Now().UnixNano()
	svc := &api.Service{Id: id, Spec: spec, Version: 1, CreatedUnixNano: now, UpdatedUnixNano: now}
	cmd := &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: svc}}}
	if _, err := c.m.store.Apply(ctx, cmd); err != nil {
		if errors.Is(err, raftstore.ErrExists) {
			return nil, status.Errorf(codes.AlreadyExists, "service %s already exists", spec.Name)
		}
		return nil, toStatus(err)
	}
	return svc, nil
}

// validateSpec checks a spec and fills in Docker's defaults.
func validateSpec(spec *api.ServiceSpec) error {
	if !validName.MatchString(spec.Name) {
		return status.Errorf(codes.InvalidArgument, "invalid service name %q: use letters, digits, '_', '.' and '-' (up to 63), starting with a letter or digit", spec.Name)
	}
	if spec.Replicas > maxReplicas {
		return status.Errorf(codes.InvalidArgument, "%d replicas is more than shoal allows (%d)", spec.Replicas, maxReplicas)
	}
	for _, e := range spec.Container.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" {
			return status.Errorf(codes.InvalidArgument, "invalid environment variable %q: use KEY=VALUE", e)
		}
	}
	if spec.Restart == nil {
		spec.Restart = orchestrator.DefaultRestartPolicy()
	}
	if spec.Restart.DelayNs < 0 || spec.Restart.WindowNs < 0 || spec.Container.StopGracePeriodNs < 0 {
		return status.Error(codes.InvalidArgument, "durations in a service spec can't be negative")
	}
	if spec.Container.StopGracePeriodNs == 0 {
		spec.Container.StopGracePeriodNs = int64(defaultStopGrace)
	}
	if spec.Update == nil {
		spec.Update = orchestrator.DefaultUpdateConfig()
	}
	if spec.Update.DelayNs < 0 || spec.Update.MonitorNs < 0 {
		return status.Error(codes.InvalidArgument, "durations in a service spec can't be negative")
	}
	return validatePorts(spec.Container.Ports)
}

// validatePorts checks published ports and fills in the protocol. An
// ingress port opens on every node, through the routing mesh; a host-mode
// one on each node that runs a task.
func validatePorts(ports []*api.PortConfig) error {
	seen := map[string]bool{}
	for _, p := range ports {
		if p.Protocol == "" {
			p.Protocol = "tcp"
		}
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return status.Errorf(codes.InvalidArgument, "invalid protocol %q of published port %d: use tcp or udp", p.Protocol, p.Published)
		}
		if p.Target == 0 || p.Target > 65535 {
			return status.Errorf(codes.InvalidArgument, "invalid target port %d: use 1 to 65535", p.Target)
		}
		if p.Published == 0 || p.Published > 65535 {
			return status.Errorf(codes.InvalidArgument, "port %d/%s needs a published port from 1 to 65535: --publish published=%d,target=%d",
				p.Target, p.Protocol, p.Target, p.Target)
		}
		if p.Mode == api.PortConfig_INGRESS && p.Published == clusterPort && p.Protocol == "tcp" {
			return status.Errorf(codes.InvalidArgument, "port %d is the swarm's own port on every node: publish another one", clusterPort)
		}
		key := fmt.Sprintf("%d/%s", p.Published, p.Protocol)
		if seen[key] {
			return status.Errorf(codes.InvalidArgument, "port %s is published twice", key)
		}
		seen[key] = true
	}
	return nil
}

// portsFree refuses a published port that another service publishes too:
// an ingress port is open on every node.
func (m *Manager) portsFree(spec *api.ServiceSpec, self string) error {
	for _, other := range m.store.FSM().Services() {
		if other.Id == self {
			continue
		}
		for _, p := range spec.GetContainer().GetPorts() {
			for _, o := range other.GetSpec().GetContainer().GetPorts() {
				if o.Published != p.Published || cmp.Or(o.Protocol, "tcp") != p.Protocol {
					continue
				}
				if p.Mode != api.PortConfig_INGRESS && o.Mode != api.PortConfig_INGRESS {
					continue // host-mode ports clash per node: the scheduler sees to it
				}
				as := "an ingress"
				if o.Mode == api.PortConfig_HOST {
					as = "a host-mode"
				}
				return status.Errorf(codes.FailedPrecondition, "port '%d' is already in use by service '%s' (%s) as %s port, and an ingress port is open on every node: publish another port",
					p.Published, other.Spec.Name, other.Id, as)
			}
		}
	}
	return nil
}

// UpdateService scales a service (Replicas), replaces its spec (Spec, made
// from Version) or rolls it back (Rollback). A new container spec starts a
// rolling update, and so does any update of a service whose update paused,
// as in Swarm.
func (c *control) UpdateService(ctx context.Context, req *api.UpdateServiceRequest) (*api.Service, error) {
	switch {
	case req.Rollback && (req.Spec != nil || req.Replicas != nil):
		return nil, status.Error(codes.InvalidArgument, "a rollback takes the previous spec as it was: give no other change with it")
	case req.Rollback:
		return c.rollback(ctx, req)
	case req.Spec != nil && req.Replicas != nil:
		return nil, status.Error(codes.InvalidArgument, "give the replicas in the spec, or alone (scale), not both")
	case req.Spec != nil:
		return c.updateSpec(ctx, req)
	}
	if req.Replicas != nil && *req.Replicas > maxReplicas {
		return nil, status.Errorf(codes.InvalidArgument, "%d replicas is more than shoal allows (%d)", *req.Replicas, maxReplicas)
	}
	// The write names the version it was made from; when another change
	// got in between, read again and retry.
	for attempt := 0; ; attempt++ {
		svc, err := c.m.resolveService(req.Ref)
		if err != nil || req.Replicas == nil {
			return svc, err
		}
		svc.Spec.Replicas = *req.Replicas
		svc.Version++
		svc.UpdatedUnixNano = time.Now().UnixNano()
		if svc.GetUpdateStatus().GetState() == api.UpdateStatus_PAUSED {
			startUpdate(svc, api.UpdateStatus_UPDATING, "update in progress") // a scale is an update too, in Swarm: it resumes
		}
		cmd := &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: svc}}}
		_, err = c.m.store.Apply(ctx, cmd)
		if errors.Is(err, raftstore.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, toStatus(err)
		}
		return svc, nil
	}
}

func (c *control) updateSpec(ctx context.Context, req *api.UpdateServiceRequest) (*api.Service, error) {
	svc, err := c.m.resolveService(req.Ref)
	if err != nil {
		return nil, err
	}
	outOfSequence := status.Errorf(codes.Aborted, "update out of sequence: service %s changed since it was read; run the command again", svc.Spec.Name)
	if svc.Version != req.Version {
		return nil, outOfSequence
	}
	spec := proto.CloneOf(req.Spec)
	if spec.Name != svc.Spec.Name {
		return nil, status.Errorf(codes.InvalidArgument, "renaming services is not supported: create a service named %s and remove %s", spec.Name, svc.Spec.Name)
	}
	if spec.GetContainer().GetImage() == "" {
		return nil, status.Error(codes.InvalidArgument, "a service needs an image: give one with --image")
	}
	if err := validateSpec(spec); err != nil {
		return nil, err
	}
	if err := c.m.portsFree(spec, svc.Id); err != nil {
		return nil, err
	}
	changed := !proto.Equal(spec.Container, svc.Spec.Container)
	if !proto.Equal(spec, svc.Spec) {
		svc.PreviousSpec = svc.Spec
	}
	svc.Spec = spec
	svc.Version++
	svc.UpdatedUnixNano = time.Now().UnixNano()
	if changed || svc.GetUpdateStatus().GetState().Paused() {
		startUpdate(svc, api.UpdateStatus_UPDATING, "update in progress")
	}
	return c.putUpdated(ctx, svc, outOfSequence)
}

// rollback puts the service's previous spec back, in a rolling update of
// its own (`service rollback`).
func (c *control) rollback(ctx context.Context, req *api.UpdateServiceRequest) (*api.Service, error) {
	svc, err := c.m.resolveService(req.Ref)
	if err != nil {
		return nil, err
	}
	outOfSequence := status.Errorf(codes.Aborted, "update out of sequence: service %s changed since it was read; run the command again", svc.Spec.Name)
	switch {
	case svc.Version != req.Version:
		return nil, outOfSequence
	case svc.PreviousSpec == nil:
		return nil, status.Errorf(codes.FailedPrecondition, "service %s has no previous spec to roll back to: it was never updated", svc.Spec.Name)
	}
	svc.Spec, svc.PreviousSpec = svc.PreviousSpec, svc.Spec
	svc.Version++
	svc.UpdatedUnixNano = time.Now().UnixNano()
	startUpdate(svc, api.UpdateStatus_ROLLBACK_STARTED, "manually requested rollback")
	return c.putUpdated(ctx, svc, outOfSequence)
}

func (c *control) putUpdated(ctx context.Context, svc *api.Service, outOfSequence error) (*api.Service, error) {
	cmd := &api.Command{Op: &api.Command_PutService{PutService: &api.PutService{Service: svc}}}
	if _, err := c.m.store.Apply(ctx, cmd); err != nil {
		if errors.Is(err, raftstore.ErrConflict) {
			return nil, outOfSequence
		}
		return nil, toStatus(err)
	}
	return svc, nil
}

// startUpdate starts a rolling update (or rollback) of svc at its (new)
// version: the tasks made from here on are the update's own.
func startUpdate(svc *api.Service, state api.UpdateStatus_State, msg string) {
	svc.UpdateStatus = &api.UpdateStatus{State: state, StartedUnixNano: svc.UpdatedUnixNano,
		StartedVersion: svc.Version, Message: msg}
}

func (c *control) RemoveService(ctx context.Context, req *api.RemoveServiceRequest) (*api.RemoveServiceResponse, error) {
	svc, err := c.m.resolveService(req.Ref)
	if err != nil {
		return nil, err
	}
	cmd := &api.Command{Op: &api.Command_RemoveService{RemoveService: &api.RemoveService{Id: svc.Id}}}
	if _, err := c.m.store.Apply(ctx, cmd); err != nil {
		return nil, toStatus(err)
	}
	return &api.RemoveServiceResponse{Id: svc.Id}, nil
}

func (c *control) GetService(ctx context.Context, req *api.GetServiceRequest) (*api.Service, error) {
	return c.m.resolveService(req.Ref)
}

func (c *control) ListServices(ctx context.Context, _ *api.ListServicesRequest) (*api.ListServicesResponse, error) {
	f := c.m.store.FSM()
	running := map[string]uint64{}
	for _, t := range f.Tasks(raftstore.TaskFilter{}) {
		if t.DesiredState == api.TaskState_RUNNING && t.GetStatus().GetState() == api.TaskState_RUNNING {
			running[t.ServiceId]++
		}
	}
	out := &api.ListServicesResponse{}
	for _, s := range f.Services() {
		out.Services = append(out.Services, &api.ServiceSummary{Service: s, Running: running[s.Id]})
	}
	return out, nil
}

func (c *control) ListTasks(ctx context.Context, req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	var filter raftstore.TaskFilter
	if req.Service != "" {
		svc, err := c.m.resolveService(req.Service)
		if err != nil {
			return nil, err
		}
		filter.ServiceID = svc.Id
	}
	if req.Node != "" {
		n, err := c.m.resolveNode(req.Node)
		if err != nil {
			return nil, err
		}
		filter.NodeID = n.Id
	}
	f := c.m.store.FSM()
	out := &api.ListTasksResponse{Tasks: f.Tasks(filter), NodeNames: map[string]string{}}
	for _, n := range f.Nodes() {
		out.NodeNames[n.Id] = n.Hostname
	}
	return out, nil
}

// resolveService finds a service by ID, name or unique ID prefix.
func (m *Manager) resolveService(ref string) (*api.Service, error) {
	if ref == "" {
		return nil, status.Error(codes.InvalidArgument, "no service given: name a service by name, ID or ID prefix")
	}
	f := m.store.FSM()
	if s, ok := f.Service(ref); ok {
		return s, nil
	}
	var byPrefix []*api.Service
	for _, s := range f.Services() {
		if s.Spec.Name == ref {
			return s, nil
		}
		if strings.HasPrefix(s.Id, ref) {
			byPrefix = append(byPrefix, s)
		}
	}
	switch len(byPrefix) {
	case 0:
		return nil, status.Errorf(codes.NotFound, "service %s not found", ref)
	case 1:
		return byPrefix[0], nil
	}
	return nil, status.Errorf(codes.FailedPrecondition, "service %s is ambiguous (%d matches found)", ref, len(byPrefix))
}
