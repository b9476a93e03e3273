package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

const (
	idWeb     = "9xkt2m4fwq1v7c3hbn8rpe5sd"
	idAPI     = "b2r6y0n4m8c1x5z7v3l9k0j2h"
	idCache10 = "c7d1f3h5j7l9n1p3r5t7v9x1z"
	idCache2  = "d0e2g4i6k8m0o2q4s6u8w0y2a"

	apiImage = "registry.local:5000/api:2.1@sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
)

// psNow is the clock `service ps` measures CURRENT STATE against in tests.
var psNow = time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)

// fixClock makes `service ps` see psNow as the time.
func fixClock(t *testing.T) {
	t.Helper()
	saved := timeNow
	timeNow = func() time.Time { return psNow }
	t.Cleanup(func() { timeNow = saved })
}

// serviceFixture is the cluster of clusterFixture running four services:
// web (3 replicas, one still preparing, slot 1 with two failed tasks in its
// history), api (2 replicas, one pending with no suitable node after a
// rejection) and two caches listed out of natural order.
func serviceFixture() *fakeDaemon {
	f := clusterFixture()
	f.services = []*api.Service{
		service(idWeb, "web", 3, 4, &api.ContainerSpec{
			Image: "nginx:1.27", Args: []string{"nginx", "-g", "daemon off;"},
			Env: []string{"MODE=prod", "DEBUG"}, StopGracePeriodNs: int64(10 * time.Second),
			Ports: []*api.PortConfig{{Published: 8080, Target: 80, Protocol: "tcp", Mode: api.PortConfig_HOST}},
		}),
		service(idCache10, "cache-10", 0, 2, &api.ContainerSpec{Image: "docker.io/library/redis:7"}),
		service(idAPI, "api", 2, 1, &api.ContainerSpec{Image: apiImage, Command: []string{"/bin/api", "--serve"},
			Ports: []*api.PortConfig{{Published: 8443, Target: 443, Protocol: "tcp", Mode: api.PortConfig_INGRESS}}}),
		service(idCache2, "cache-2", 1, 1, &api.ContainerSpec{Image: "redis@sha256:0a1b2c3d4e5f"}),
	}
	f.services[0].Spec.Labels = map[string]string{"tier": "front", "canary": ""}
	f.services[0].Spec.Restart = &api.RestartPolicy{
		Condition: api.RestartPolicy_ON_FAILURE, DelayNs: int64(2 * time.Second), MaxAttempts: 3, WindowNs: int64(time.Minute),
	}
	f.services[0].Spec.Update = &api.UpdateConfig{Parallelism: 2, DelayNs: int64(10 * time.Second), MonitorNs: int64(5 * time.Second)}
	f.services[0].UpdateStatus = &api.UpdateStatus{State: api.UpdateStatus_PAUSED, StartedUnixNano: psNow.Add(-11 * time.Second).UnixNano(),
		CompletedUnixNano: psNow.Add(-3 * time.Second).UnixNano(), Message: "update paused due to failure or early termination of task w1curr5g7h9j1k3l5m7n9p1qr"}
	f.running = map[string]uint64{idWeb: 2, idAPI: 1, idCache2: 1}
	f.nodeNames = map[string]string{
		idManager1: "manager-1", idManager2: "manager-2", idWorker10: "worker-10", idWorker2: "worker-2",
	}
	ago := func(d time.Duration) int64 { return psNow.Add(-d).UnixNano() }
	web := f.services[0].Spec.Container
	apiSpec := f.services[2].Spec.Container
	f.tasks = []*api.Task{
		task("w3pqzv0k6m1n8b2c4x7l9d5fh", idWeb, "web", 2, idWorker10, web, api.TaskState_RUNNING, api.TaskState_RUNNING, ago(90*time.Second), ago(2*time.Minute), ""),
		task("w1oldc9s4t6u8v0w2x4y6z8ab", idWeb, "web", 1, idWorker10, web, api.TaskState_SHUTDOWN, api.TaskState_FAILED, ago(3*time.Minute+10*time.Second), ago(4*time.Minute), "task: non-zero exit (1)"),
		task("w1curr5g7h9j1k3l5m7n9p1qr", idWeb, "web", 1, idManager1, web, api.TaskState_RUNNING, api.TaskState_RUNNING, ago(5*time.Second), ago(10*time.Second), ""),
		task("w1oldest2e4g6i8k0m2o4q6s8", idWeb, "web", 1, idManager1, web, api.TaskState_SHUTDOWN, api.TaskState_FAILED, ago(9*time.Minute), ago(10*time.Minute),
			`starting container failed: exec: "nginx": executable file not found in $PATH`),
		task("w3prep0a2b4c6d8e0f2g4h6i8", idWeb, "web", 3, idWorker2, web, api.TaskState_RUNNING, api.TaskState_PREPARING, ago(2*time.Second), ago(3*time.Second), ""),
		task("a2pend1z3y5x7w9v1u3t5s7r9", idAPI, "api", 2, "", apiSpec, api.TaskState_RUNNING, api.TaskState_PENDING, ago(500*time.Millisecond), ago(39*time.Second),
			"no suitable node (1 node not available for new tasks; 2 nodes unreachable)"),
		task("a1runn8q6o4m2k0i8g6e4c2a0", idAPI, "api", 1, idManager2, apiSpec, api.TaskState_RUNNING, api.TaskState_RUNNING, ago(26*time.Hour), ago(26*time.Hour), ""),
		task("a2rejc3b5d7f9h1j3l5n7p9r1", idAPI, "api", 2, idManager3, apiSpec, api.TaskState_SHUTDOWN, api.TaskState_REJECTED, ago(40*time.Second), ago(41*time.Second),
			"No such image: registry.local:5000/api:2.1"),
	}
	return f
}

func service(id, name string, replicas, version uint64, c *api.ContainerSpec) *api.Service {
	return &api.Service{
		Id: id, Version: version,
		Spec: &api.ServiceSpec{
			Name: name, Container: c, Replicas: replicas,
			Restart: &api.RestartPolicy{DelayNs: int64(defaultRestartDelay)},
		},
		CreatedUnixNano: joined.UnixNano(), UpdatedUnixNano: joined.Add(time.Hour).UnixNano(),
	}
}

func task(id, serviceID, serviceName string, slot uint64, nodeID string, spec *api.ContainerSpec,
	desired, state api.TaskState, stateAt, created int64, taskErr string) *api.Task {
	return &api.Task{
		Id: id, ServiceId: serviceID, ServiceName: serviceName, Slot: slot, NodeId: nodeID,
		Spec: spec, ServiceVersion: 1, DesiredState: desired, CreatedUnixNano: created,
		Status: &api.TaskStatus{State: state, UnixNano: stateAt, Err: taskErr},
	}
}

func TestServiceList(t *testing.T) {
	host := serviceFixture().serve(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"service-ls", []string{"service", "ls"}},
		{"service-ls-json", []string{"service", "ls", "--format", "json"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			assertGolden(t, tc.golden, mustShoal(t, host, tc.args...))
		})
	}
	if got, want := mustShoal(t, host, "service", "ls", "-q"), "b2r6y0n4m8c1\nd0e2g4i6k8m0\nc7d1f3h5j7l9\n9xkt2m4fwq1v\n"; got != want {
		t.Errorf("service ls -q = %q, want %q (short IDs, by name)", got, want)
	}
	if got, want := mustShoal(t, host, "service", "ls", "--format", "{{.Name}} {{.Replicas}}"), "api 1/2\ncache-2 1/1\ncache-10 0/0\nweb 2/3\n"; got != want {
		t.Errorf("service ls --format = %q, want %q", got, want)
	}
}

func TestServiceListEmptyPrintsHeader(t *testing.T) {
	got := mustShoal(t, newFakeDaemon().serve(t), "service", "ls")
	want := "ID        NAME      MODE      REPLICAS   IMAGE     PORTS\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestServicePs(t *testing.T) {
	fixClock(t)
	host := serviceFixture().serve(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"service-ps", []string{"service", "ps", "web", "api"}},
		{"service-ps-no-trunc", []string{"service", "ps", "--no-trunc", "web", idAPI[:4]}},
		{"service-ps-json", []string{"service", "ps", "--format", "json", "api"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			assertGolden(t, tc.golden, mustShoal(t, host, tc.args...))
		})
	}

	// -q prints whole IDs in the table's order; names are not indented
	// outside a table.
	if got, want := mustShoal(t, host, "service", "ps", "-q", "api"),
		"a1runn8q6o4m2k0i8g6e4c2a0\na2pend1z3y5x7w9v1u3t5s7r9\na2rejc3b5d7f9h1j3l5n7p9r1\n"; got != want {
		t.Errorf("ps -q = %q, want %q", got, want)
	}
	if got, want := mustShoal(t, host, "service", "ps", "--format", "{{.Name}}", "web"),
		"web.1\nweb.1\nweb.1\nweb.2\nweb.3\n"; got != want {
		t.Errorf("ps --format {{.Name}} = %q, want %q", got, want)
	}
}

func TestServicePsFilters(t *testing.T) {
	fixClock(t)
	f := serviceFixture()
	f.info.NodeId = idWorker10
	host := f.serve(t)
	for _, tc := range []struct {
		filters []string
		want    string
	}{
		{[]string{"desired-state=running"}, "web.1 web.2 web.3"},
		{[]string{"desired-state=shutdown"}, "web.1 web.1"},
		{[]string{"desired-state=Running", "desired-state=shutdown"}, "web.1 web.1 web.1 web.2 web.3"},
		{[]string{"node=worker-10"}, "web.1 web.2"},
		{[]string{"node=self"}, "web.1 web.2"},
		{[]string{"node=" + idManager1[:5], "desired-state=running"}, "web.1"},
		{[]string{"id=w3"}, "web.2 web.3"},
		{[]string{"name=web.3"}, "web.3"},
		{[]string{"name=web.1.w1curr"}, "web.1"},
		{[]string{"name=web.2", "name=web.3"}, "web.2 web.3"},
	} {
		args := []string{"service", "ps", "--format", "{{.Name}}"}
		for _, fl := range tc.filters {
			args = append(args, "--filter", fl)
		}
		got := strings.Join(strings.Fields(mustShoal(t, host, append(args, "web")...)), " ")
		if got != tc.want {
			t.Errorf("ps --filter %v: got %q, want %q", tc.filters, got, tc.want)
		}
	}

	for _, tc := range []struct {
		filter string
		code   int
		stderr string
	}{
		{"color=red", 1, "invalid filter 'color'\n"},
		{"desired-state=sleeping", 1, "invalid desired-state filter: 'sleeping' (use running, shutdown or accepted)\n"},
		{"nonsense", 125, "invalid argument \"nonsense\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\nSee 'shoal service ps --help'.\n"},
	} {
		r := shoal(t, host, "service", "ps", "-f", tc.filter, "web")
		if r.code != tc.code || r.stdout != "" || r.stderr != tc.stderr {
			t.Errorf("ps -f %s: got %s\nwant exit %d, stderr %q", tc.filter, r, tc.code, tc.stderr)
		}
	}
}

func TestServicePsMissingService(t *testing.T) {
	fixClock(t)
	host := serviceFixture().serve(t)
	r := shoal(t, host, "service", "ps", "--format", "{{.Name}}", "ghost", "api", "phantom")
	if r.code != 1 || r.stdout != "api.1\napi.2\napi.2\n" || r.stderr != "no such service: ghost\nno such service: phantom\n" {
		t.Errorf("some missing: got %s", r)
	}
	r = shoal(t, host, "service", "ps", "ghost")
	if r.code != 1 || r.stdout != "" || r.stderr != "no such service: ghost\n" {
		t.Errorf("all missing: got %s", r)
	}
}

func TestServiceCreateRequest(t *testing.T) {
	f := serviceFixture()
	host := f.serve(t)
	t.Setenv("FROM_CLI_ENV", "yes")
	out := mustShoal(t, host, "service", "create", "-d", "--name", "web2", "--replicas", "3",
		"-e", "MODE=prod", "--env", "FROM_CLI_ENV", "-e", "UNSET_IN_CLI_ENV",
		"--label", "tier=front", "-l", "canary", "--container-label", "team=blue",
		"--restart-condition", "on-failure", "--restart-delay", "2s", "--restart-max-attempts", "4",
		"--restart-window", "1m", "--stop-grace-period", "30s", "--entrypoint", `sh -c`,
		"--update-parallelism", "2", "--update-delay", "10s", "--update-failure-action", "continue",
		"nginx:1.27", "echo", "hello world", "--not-a-flag")
	assertGolden(t, "service-create-detach", out)

	reqs := f.requests("CreateService")
	if len(reqs) != 1 {
		t.Fatalf("want one CreateService call, got %d", len(reqs))
	}
	want := &api.ServiceSpec{
		Name:     "web2",
		Labels:   map[string]string{"tier": "front", "canary": ""},
		Replicas: 3,
		Container: &api.ContainerSpec{
			Image:             "nginx:1.27",
			Command:           []string{"sh", "-c"},
			Args:              []string{"echo", "hello world", "--not-a-flag"},
			Env:               []string{"MODE=prod", "FROM_CLI_ENV=yes", "UNSET_IN_CLI_ENV"},
			Labels:            map[string]string{"team": "blue"},
			StopGracePeriodNs: int64(30 * time.Second),
		},
		Restart: &api.RestartPolicy{
			Condition: api.RestartPolicy_ON_FAILURE, DelayNs: int64(2 * time.Second),
			MaxAttempts: 4, WindowNs: int64(time.Minute),
		},
		Update: &api.UpdateConfig{Parallelism: 2, DelayNs: int64(10 * time.Second),
			FailureAction: api.UpdateConfig_CONTINUE, MonitorNs: int64(5 * time.Second)},
	}
	if got := reqs[0].(*api.CreateServiceRequest).GetSpec(); !proto.Equal(got, want) {
		t.Errorf("create sent\n%v\nwant\n%v", got, want)
	}
}

func TestServiceCreateDefaults(t *testing.T) {
	f := newFakeDaemon()
	host := f.serve(t)
	if out := mustShoal(t, host, "service", "create", "--detach", "nginx"); out != f.newServiceID+"\n" {
		t.Errorf("create -d printed %q, want the whole service ID", out)
	}
	want := &api.ServiceSpec{
		Replicas:  1,
		Container: &api.ContainerSpec{Image: "nginx", StopGracePeriodNs: int64(10 * time.Second)},
		Restart:   &api.RestartPolicy{Condition: api.RestartPolicy_ANY, DelayNs: int64(5 * time.Second)},
		Update:    &api.UpdateConfig{Parallelism: 1, MonitorNs: int64(5 * time.Second)},
	}
	if got := f.requests("CreateService")[0].(*api.CreateServiceRequest).GetSpec(); !proto.Equal(got, want) {
		t.Errorf("create sent\n%v\nwant the defaults\n%v", got, want)
	}
}

func TestServiceCreateBadFlags(t *testing.T) {
	f := newFakeDaemon()
	host := f.serve(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--restart-condition", "sometimes"}, `invalid argument "sometimes" for "--restart-condition" flag: use "any", "on-failure" or "none"`},
		{[]string{"--restart-delay", "-1s"}, `invalid argument "-1s" for "--restart-delay" flag: the duration must not be negative`},
		{[]string{"--stop-grace-period", "soon"}, `invalid argument "soon" for "--stop-grace-period" flag: use a duration such as 500ms, 5s or 2m (units ns|us|ms|s|m|h)`},
		{[]string{"-e", "=x"}, `invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x`},
		{[]string{"--label", "=x"}, `invalid argument "=x" for "-l, --label" flag: invalid label "=x": the key is empty`},
		{[]string{"--entrypoint", `sh -c "echo`}, `invalid argument "sh -c \"echo" for "--entrypoint" flag: unterminated quote or escape`},
		{[]string{"--replicas", "-1"}, `invalid argument "-1" for "--replicas" flag: strconv.ParseUint: parsing "-1": invalid syntax`},
		{[]string{"-p", "8080"}, `invalid argument "8080" for "-p, --publish" flag: invalid port "8080": use PUBLISHED:TARGET[/PROTOCOL], or published=P,target=T,mode=host`},
		{[]string{"-p", "8080:http"}, `invalid argument "8080:http" for "-p, --publish" flag: invalid port "http": use a number from 1 to 65535`},
		{[]string{"-p", "published=8080,mode=host"}, `invalid argument "published=8080,mode=host" for "-p, --publish" flag: missing target port in "published=8080,mode=host": add target=PORT`},
		{[]string{"-p", "target=80,mode=bridge"}, `invalid argument "target=80,mode=bridge" for "-p, --publish" flag: invalid publish mode "bridge": use ingress or host`},
		{[]string{"-p", "target=80,color=red"}, `invalid argument "target=80,color=red" for "-p, --publish" flag: invalid field key "color" in "target=80,color=red": use published, target, protocol or mode`},
	} {
		r := shoal(t, host, append(append([]string{"service", "create", "-d"}, tc.args...), "nginx")...)
		want := tc.want + "\nSee 'shoal service create --help'.\n"
		if r.code != 125 || r.stderr != want {
			t.Errorf("create %v: got %s\nwant exit 125, stderr %q", tc.args, r, want)
		}
	}
	if n := len(f.requests("CreateService")); n != 0 {
		t.Errorf("bad flags reached the daemon: %d CreateService calls", n)
	}
}

func TestServiceCreatePublish(t *testing.T) {
	f := newFakeDaemon()
	host := f.serve(t)
	mustShoal(t, host, "service", "create", "-d", "-p", "8080:80", "--publish", "published=53,target=5353,protocol=UDP,mode=host", "nginx")
	want := []*api.PortConfig{
		{Published: 8080, Target: 80},
		{Published: 53, Target: 5353, Protocol: "udp", Mode: api.PortConfig_HOST},
	}
	got := f.requests("CreateService")[0].(*api.CreateServiceRequest).GetSpec().GetContainer().GetPorts()
	if len(got) != len(want) {
		t.Fatalf("create sent ports %v, want %v", got, want)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("port %d: sent %v, want %v", i, got[i], want[i])
		}
	}
	if s := portsText(want); s != "*:8080->80/tcp,*:53->5353/udp" {
		t.Errorf("PORTS column: %q", s)
	}
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string][]string{
		`sh -c`:                  {"sh", "-c"},
		`  a   b  `:              {"a", "b"},
		`sh -c 'echo $HOME; ls'`: {"sh", "-c", "echo $HOME; ls"},
		`say "a \"b\" \c"`:       {"say", `a "b" \c`},
		`a\ b c`:                 {"a b", "c"},
		`''`:                     {""},
		``:                       nil,
	} {
		got, err := splitWords(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `trailing\`} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q): want an error", bad)
		}
	}
}

func TestServiceScale(t *testing.T) {
	f := serviceFixture()
	host := f.serve(t)
	r := shoal(t, host, "service", "scale", "-d", "web=5", "api=x", "ghost=2", idCache2[:6]+"=0")
	assertGolden(t, "service-scale", r.String())
	reqs := f.requests("UpdateService")
	if len(reqs) != 3 {
		t.Fatalf("want 3 UpdateService calls (api=x is refused before sending), got %d", len(reqs))
	}
	if req := reqs[0].(*api.UpdateServiceRequest); req.GetRef() != "web" || req.Replicas == nil || *req.Replicas != 5 {
		t.Errorf("scale sent %v", req)
	}
}

func TestServiceScaleBadSpecifier(t *testing.T) {
	f := serviceFixture()
	host := f.serve(t)
	r := shoal(t, host, "service", "scale", "web=2", "api")
	assertGolden(t, "service-scale-bad-specifier", r.String())
	if n := len(f.requests("UpdateService")); n != 0 {
		t.Errorf("a bad specifier must stop every scale, got %d UpdateService calls", n)
	}
}

func TestServiceRemove(t *testing.T) {
	f := serviceFixture()
	host := f.serve(t)
	r := shoal(t, host, "service", "rm", "web", "ghost", idAPI[:5])
	assertGolden(t, "service-rm", r.String())
	if got := mustShoal(t, host, "service", "ls", "--format", "{{.Name}}"); got != "cache-2\ncache-10\n" {
		t.Errorf("after rm, service ls = %q", got)
	}
}

func TestServiceInspect(t *testing.T) {
	fixClock(t)
	host := serviceFixture().serve(t)
	t.Run("json", func(t *testing.T) {
		assertGolden(t, "service-inspect", mustShoal(t, host, "service", "inspect", "web", "cache-10"))
	})
	t.Run("pretty", func(t *testing.T) {
		assertGolden(t, "service-inspect-pretty", mustShoal(t, host, "service", "inspect", "--pretty", "web", "api"))
	})
	t.Run("compact json", func(t *testing.T) {
		out := mustShoal(t, host, "service", "inspect", "--format", "json", "api")
		var services []map[string]any
		if err := json.Unmarshal([]byte(out), &services); err != nil || len(services) != 1 || strings.Count(out, "\n") != 1 {
			t.Errorf("want one service on one line, got %q (%v)", out, err)
		}
	})
	for _, tc := range []struct {
		format, ref, want string
	}{
		{"{{.Spec.Mode.Replicated.Replicas}}", "web", "3\n"},
		{"{{.Spec.TaskTemplate.RestartPolicy.Condition}} {{.Spec.TaskTemplate.RestartPolicy.Delay}}", "web", "on-failure 2s\n"},
		{"{{.Spec.TaskTemplate.RestartPolicy.Condition}} {{.Spec.TaskTemplate.RestartPolicy.Delay}}", "api", "any 5s\n"},
		{"{{.Spec.TaskTemplate.ContainerSpec.StopGracePeriod}}", "web", "10s\n"},
		{"{{json .Spec.TaskTemplate.ContainerSpec.Command}}", "api", `["/bin/api","--serve"]` + "\n"},
		{"{{.Version.Index}} {{.ID}}", idCache2[:7], "1 " + idCache2 + "\n"},
		{"{{json .Spec.Labels}}", "cache-2", "{}\n"},
		{"{{.UpdateStatus.State}} {{.Spec.UpdateConfig.Delay}}", "web", "paused 10s\n"},
	} {
		if got := mustShoal(t, host, "service", "inspect", "--format", tc.format, tc.ref); got != tc.want {
			t.Errorf("service inspect %s --format %q = %q, want %q", tc.ref, tc.format, got, tc.want)
		}
	}
}

func TestServiceInspectErrors(t *testing.T) {
	host := serviceFixture().serve(t)
	r := shoal(t, host, "service", "inspect", "ghost")
	if r.code != 1 || r.stdout != "[]\n" || r.stderr != "Error: no such service: ghost\n" {
		t.Errorf("missing service: got %s", r)
	}
	r = shoal(t, host, "service", "inspect", "--format", "{{.Spec.Name}}", "ghost", "web")
	if r.code != 1 || r.stdout != "web\n" || r.stderr != "Error: no such service: ghost\n" {
		t.Errorf("one missing service: got %s", r)
	}
	r = shoal(t, host, "service", "inspect", "--pretty", "--format", "{{.ID}}", "web")
	if r.code != 1 || r.stderr != "--format is incompatible with human friendly format\n" {
		t.Errorf("--pretty with --format: got %s", r)
	}
}

func TestServiceUsageErrors(t *testing.T) {
	host := "unix:///nonexistent/shoal.sock"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"service", "create"}, "shoal: 'shoal service create' requires at least 1 argument\n\nUsage:  shoal service create [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nSee 'shoal service create --help' for more information\n"},
		{[]string{"service", "ps"}, "shoal: 'shoal service ps' requires at least 1 argument\n\nUsage:  shoal service ps [OPTIONS] SERVICE [SERVICE...]\n\nSee 'shoal service ps --help' for more information\n"},
		{[]string{"service", "scale"}, "shoal: 'shoal service scale' requires at least 1 argument\n\nUsage:  shoal service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nSee 'shoal service scale --help' for more information\n"},
		{[]string{"service", "ls", "web"}, "shoal: 'shoal service ls' accepts no arguments\n\nUsage:  shoal service ls [OPTIONS]\n\nRun 'shoal service ls --help' for more information\n"},
	} {
		r := shoal(t, host, tc.args...)
		if r.code != 1 || r.stderr != tc.want {
			t.Errorf("shoal %v: got %s\nwant stderr %q", tc.args, r, tc.want)
		}
	}
}

// service update reads the service, changes what the flags say and sends
// the whole spec with the version it read.
func TestServiceUpdateRequest(t *testing.T) {
	f := serviceFixture()
	host := f.serve(t)
	want := proto.CloneOf(f.services[0].Spec)
	out := mustShoal(t, host, "service", "update", "-d", "--image", "nginx:1.28", "--env-add", "MODE=dev", "--env-add", "NEW=1",
		"--env-rm", "DEBUG", "--label-rm", "canary", "--label-add", "owner=ops", "--publish-rm", "80",
		"--publish-add", "published=9090,target=90,mode=host", "--update-delay", "3s", "--force", "--replicas", "4", "web")
	if out != "web\n" {
		t.Errorf("update -d printed %q, want the service as named", out)
	}
	reqs := f.requests("UpdateService")
	if len(reqs) != 1 {
		t.Fatalf("want one UpdateService call, got %d", len(reqs))
	}
	req := reqs[0].(*api.UpdateServiceRequest)
	if req.GetRef() != idWeb || req.GetVersion() != 4 || req.Replicas != nil {
		t.Errorf("update sent ref %q version %d replicas %v, want the ID, the version read (4), no scale", req.GetRef(), req.GetVersion(), req.Replicas)
	}
	want.Replicas = 4
	want.Labels = map[string]string{"tier": "front", "owner": "ops"}
	want.Container.Image = "nginx:1.28"
	want.Container.Env = []string{"MODE=dev", "NEW=1"}
	want.Container.Ports = []*api.PortConfig{{Published: 9090, Target: 90, Mode: api.PortConfig_HOST}}
	want.Container.ForceUpdate = 1
	want.Update.DelayNs = int64(3 * time.Second) // the other update settings stay
	if !proto.Equal(req.GetSpec(), want) {
		t.Errorf("update sent\n%v\nwant\n%v", req.GetSpec(), want)
	}
}

func TestServiceUpdateBadFlags(t *testing.T) {
	f := serviceFixture()
	host := f.serve(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--publish-rm", "81", "web"}, "publishes no target port 81"},
		{[]string{"--update-failure-action", "undo", "web"}, `use "pause", "continue" or "rollback"`},
		{[]string{"--rollback", "--image", "x", "web"}, "--rollback takes the previous spec as it was: leave out --image"},
		{[]string{"--update-order", "start-first", "web"}, `only "stop-first"`},
		{[]string{"--image", "", "web"}, "--image can't be empty"},
		{[]string{"ghost"}, "service ghost not found"},
		{[]string{"-d"}, "requires 1 argument"},
	} {
		r := shoal(t, host, append([]string{"service", "update", "-d"}, tc.args...)...)
		if r.code == 0 || !strings.Contains(r.String(), tc.want) {
			t.Errorf("service update %v: exit %d, output %q; want a refusal saying %q", tc.args, r.code, r.String(), tc.want)
		}
	}
	if n := len(f.requests("UpdateService")); n != 0 {
		t.Errorf("%d UpdateService calls were sent for refused updates", n)
	}
}

// node ps lists the tasks on nodes, the CLI's own by default, in service
// ps's table.
func TestNodePs(t *testing.T) {
	fixClock(t)
	f := serviceFixture()
	host := f.serve(t)
	assertGolden(t, "node-ps-worker-10", mustShoal(t, host, "node", "ps", "worker-10"))
	f.info.NodeId = idManager1 // the node the CLI talks to
	if got, want := mustShoal(t, host, "node", "ps", "--format", "{{.Name}} {{.Node}} {{.DesiredState}}"),
		"web.1 manager-1 Running\nweb.1 manager-1 Shutdown\n"; got != want {
		t.Errorf("node ps without a node: %q, want the tasks of the CLI's own node %q", got, want)
	}
	r := shoal(t, host, "node", "ps", "--format", "{{.Name}}", "worker-2", "ghost")
	if r.code == 0 || r.stdout != "web.3\n" || !strings.Contains(r.stderr, "No such node: ghost") {
		t.Errorf("node ps worker-2 ghost: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
