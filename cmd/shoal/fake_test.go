package main

// An in-process fake of the daemon's Swarm and Control services on a unix
// socket, and helpers to run shoal command lines against it.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// fakeDaemon answers from canned state and records every request.
type fakeDaemon struct {
	api.UnimplementedSwarmServer
	api.UnimplementedControlServer

	mu       sync.Mutex
	info     *api.InfoResponse
	nodes    []*api.Node
	selfID   string
	initResp *api.InitResponse
	joinRole api.NodeRole
	tokens   map[api.NodeRole]string
	addrs    []string
	// fail makes a call fail: keyed by method name, or by "Method ref".
	fail  map[string]error
	calls []call

	services  []*api.Service
	running   map[string]uint64 // service ID to its running tasks, for ListServices
	tasks     []*api.Task
	nodeNames map[string]string
	// taskFrames, when set, are what successive ListTasks calls return,
	// the last one over and over once they run out: a service converging.
	taskFrames [][]*api.Task
	listTasks  int
	// onListTasks, when set, is called with the number of each ListTasks
	// call, say to press ^C at the third.
	onListTasks  func(n int)
	newServiceID string // the ID CreateService gives
	raftStatus   *api.RaftStatusResponse
	events       []*api.Event // what Events streams before it ends
}

type call struct {
	method string
	req    proto.Message
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{
		info: &api.InfoResponse{LocalNodeState: "inactive", EngineVersion: "0.1.0-dev"},
		tokens: map[api.NodeRole]string{
			api.NodeRole_WORKER:  "SWMTKN-1-0000000000000000000000000000000000000000000000abcd-worker0000000000000000001",
			api.NodeRole_MANAGER: "SWMTKN-1-0000000000000000000000000000000000000000000000abcd-manager000000000000000001",
		},
		fail:         map[string]error{},
		running:      map[string]uint64{},
		newServiceID: "q8w3e5r7t9y1u2i4o6p8a0s2d",
	}
}

// serve starts the fake on a unix socket and returns the -H value for it.
func (f *fakeDaemon) serve(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shoal.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterSwarmServer(srv, f)
	api.RegisterControlServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return "unix://" + path
}

// record notes a call and returns the error set up for it, if any.
func (f *fakeDaemon) record(method, ref string, req proto.Message) error {
	f.calls = append(f.calls, call{method: method, req: proto.Clone(req)})
	if err := f.fail[method+" "+ref]; err != nil {
		return err
	}
	return f.fail[method]
}

func (f *fakeDaemon) requests(method string) []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []proto.Message
	for _, c := range f.calls {
		if c.method == method {
			out = append(out, c.req)
		}
	}
	return out
}

func (f *fakeDaemon) find(ref string) *api.Node {
	for _, n := range f.nodes {
		if n.Id == ref || n.Hostname == ref {
			return n
		}
	}
	for _, n := range f.nodes {
		if strings.HasPrefix(n.Id, ref) {
			return n
		}
	}
	return nil
}

func (f *fakeDaemon) Init(_ context.Context, req *api.InitRequest) (*api.InitResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Init", "", req); err != nil {
		return nil, err
	}
	return f.initResp, nil
}

func (f *fakeDaemon) Join(_ context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Join", "", req); err != nil {
		return nil, err
	}
	return &api.JoinResponse{NodeId: "newnode", Role: f.joinRole}, nil
}

func (f *fakeDaemon) Leave(_ context.Context, req *api.LeaveRequest) (*api.LeaveResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Leave", "", req); err != nil {
		return nil, err
	}
	return &api.LeaveResponse{}, nil
}

func (f *fakeDaemon) Info(_ context.Context, req *api.InfoRequest) (*api.InfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("Info", "", req); err != nil {
		return nil, err
	}
	return f.info, nil
}

func (f *fakeDaemon) ListNodes(_ context.Context, req *api.ListNodesRequest) (*api.ListNodesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("ListNodes", "", req); err != nil {
		return nil, err
	}
	return &api.ListNodesResponse{Nodes: f.nodes, SelfId: f.selfID}, nil
}

func (f *fakeDaemon) GetNode(_ context.Context, req *api.GetNodeRequest) (*api.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("GetNode", req.Ref, req); err != nil {
		return nil, err
	}
	if n := f.find(req.Ref); n != nil {
		return proto.CloneOf(n), nil
	}
	return nil, status.Errorf(codes.NotFound, "node %s not found", req.Ref)
}

func (f *fakeDaemon) UpdateNode(_ context.Context, req *api.UpdateNodeRequest) (*api.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("UpdateNode", req.Ref, req); err != nil {
		return nil, err
	}
	n := f.find(req.Ref)
	if n == nil {
		return nil, status.Errorf(codes.NotFound, "node %s not found", req.Ref)
	}
	if req.Availability != nil {
		n.Availability = *req.Availability
	}
	if req.DesiredRole != nil {
		n.DesiredRole = *req.DesiredRole
	}
	return proto.CloneOf(n), nil
}

func (f *fakeDaemon) RemoveNode(_ context.Context, req *api.RemoveNodeRequest) (*api.RemoveNodeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("RemoveNode", req.Ref, req); err != nil {
		return nil, err
	}
	n := f.find(req.Ref)
	if n == nil {
		return nil, status.Errorf(codes.NotFound, "node %s not found", req.Ref)
	}
	return &api.RemoveNodeResponse{Id: n.Id}, nil
}

func (f *fakeDaemon) GetJoinToken(_ context.Context, req *api.GetJoinTokenRequest) (*api.JoinToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("GetJoinToken", "", req); err != nil {
		return nil, err
	}
	return &api.JoinToken{Role: req.Role, Token: f.tokens[req.Role], ManagerAddrs: f.addrs}, nil
}

func (f *fakeDaemon) RotateJoinToken(_ context.Context, req *api.GetJoinTokenRequest) (*api.JoinToken, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("RotateJoinToken", "", req); err != nil {
		return nil, err
	}
	f.tokens[req.Role] = strings.Replace(f.tokens[req.Role], "0001", "0002", 1)
	return &api.JoinToken{Role: req.Role, Token: f.tokens[req.Role], ManagerAddrs: f.addrs}, nil
}

func (f *fakeDaemon) findService(ref string) *api.Service {
	for _, s := range f.services {
		if s.Id == ref || s.Spec.GetName() == ref {
			return s
		}
	}
	for _, s := range f.services {
		if ref != "" && strings.HasPrefix(s.Id, ref) {
			return s
		}
	}
	return nil
}

func serviceNotFound(ref string) error {
	return status.Errorf(codes.NotFound, "service %s not found", ref)
}

func (f *fakeDaemon) CreateService(_ context.Context, req *api.CreateServiceRequest) (*api.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("CreateService", req.GetSpec().GetName(), req); err != nil {
		return nil, err
	}
	svc := &api.Service{
		Id: f.newServiceID, Spec: proto.CloneOf(req.Spec), Version: 1,
		CreatedUnixNano: joined.UnixNano(), UpdatedUnixNano: joined.UnixNano(),
	}
	f.services = append(f.services, svc)
	return proto.CloneOf(svc), nil
}

func (f *fakeDaemon) UpdateService(_ context.Context, req *api.UpdateServiceRequest) (*api.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("UpdateService", req.Ref, req); err != nil {
		return nil, err
	}
	svc := f.findService(req.Ref)
	if svc == nil {
		return nil, serviceNotFound(req.Ref)
	}
	if req.Replicas != nil {
		svc.Spec.Replicas = *req.Replicas
	}
	svc.Version++
	if req.Spec != nil {
		if !proto.Equal(req.Spec.Container, svc.Spec.Container) {
			svc.UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_UPDATING, StartedVersion: svc.Version}
		}
		svc.Spec = proto.CloneOf(req.Spec)
	}
	return proto.CloneOf(svc), nil
}

func (f *fakeDaemon) RemoveService(_ context.Context, req *api.RemoveServiceRequest) (*api.RemoveServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("RemoveService", req.Ref, req); err != nil {
		return nil, err
	}
	svc := f.findService(req.Ref)
	if svc == nil {
		return nil, serviceNotFound(req.Ref)
	}
	f.services = slices.DeleteFunc(f.services, func(s *api.Service) bool { return s == svc })
	return &api.RemoveServiceResponse{Id: svc.Id}, nil
}

func (f *fakeDaemon) GetService(_ context.Context, req *api.GetServiceRequest) (*api.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("GetService", req.Ref, req); err != nil {
		return nil, err
	}
	if svc := f.findService(req.Ref); svc != nil {
		return proto.CloneOf(svc), nil
	}
	return nil, serviceNotFound(req.Ref)
}

func (f *fakeDaemon) ListServices(_ context.Context, req *api.ListServicesRequest) (*api.ListServicesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("ListServices", "", req); err != nil {
		return nil, err
	}
	resp := &api.ListServicesResponse{}
	for _, s := range f.services {
		resp.Services = append(resp.Services, &api.ServiceSummary{Service: s, Running: f.running[s.Id]})
	}
	return resp, nil
}

func (f *fakeDaemon) Events(req *api.EventsRequest, stream api.Control_EventsServer) error {
	f.mu.Lock()
	err := f.record("Events", "", req)
	events := f.events
	f.mu.Unlock()
	if err != nil {
		return err
	}
	for _, e := range events {
		if len(req.Types) == 0 || slices.Contains(req.Types, e.Type) {
			if err := stream.Send(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeDaemon) RaftStatus(_ context.Context, req *api.RaftStatusRequest) (*api.RaftStatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("RaftStatus", "", req); err != nil {
		return nil, err
	}
	return f.raftStatus, nil
}

func (f *fakeDaemon) ListTasks(_ context.Context, req *api.ListTasksRequest) (*api.ListTasksResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("ListTasks", req.Service, req); err != nil {
		return nil, err
	}
	f.listTasks++
	if f.onListTasks != nil {
		f.onListTasks(f.listTasks)
	}
	tasks := f.tasks
	if n := len(f.taskFrames); n > 0 {
		tasks = f.taskFrames[min(f.listTasks, n)-1]
	}
	var svc *api.Service
	if req.Service != "" {
		if svc = f.findService(req.Service); svc == nil {
			return nil, serviceNotFound(req.Service)
		}
	}
	resp := &api.ListTasksResponse{NodeNames: f.nodeNames}
	for _, t := range tasks {
		if (svc == nil || t.ServiceId == svc.Id) && (req.Node == "" || t.NodeId == req.Node) {
			resp.Tasks = append(resp.Tasks, t)
		}
	}
	return resp, nil
}

// result is what one shoal command line did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// shoal runs one command line against the daemon at host.
func shoal(t *testing.T, host string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"-H", host}, args...), &out, &errb)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// mustShoal runs a command line that must succeed and returns its stdout.
func mustShoal(t *testing.T, host string, args ...string) string {
	t.Helper()
	r := shoal(t, host, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("shoal %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// assertGolden compares got with testdata/<name>.golden; run the tests with
// -update to rewrite the file.
func assertGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got ---\n%s--- want ---\n%s", path, got, want)
	}
}
