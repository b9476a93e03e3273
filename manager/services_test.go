package manager

import (
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestValidatePorts(t *testing.T) {
	host := func(published, target uint32, proto string) *api.PortConfig {
		return &api.PortConfig{Published: published, Target: target, Protocol: proto, Mode: api.PortConfig_HOST}
	}
	ok := []*api.PortConfig{host(8080, 80, ""), host(8080, 80, "udp"), {Published: 9090, Target: 90}}
	if err := validatePorts(ok); err != nil {
		t.Fatalf("tcp and udp on one port: %v", err)
	}
	if ok[0].Protocol != "tcp" {
		t.Errorf("the protocol defaults to %q, want tcp", ok[0].Protocol)
	}
	for _, c := range []struct {
		ports []*api.PortConfig
		want  string
	}{
		{[]*api.PortConfig{{Target: 80}}, "needs a published port from 1 to 65535: --publish published=80,target=80"},
		{[]*api.PortConfig{host(0, 80, "tcp")}, "needs a published port"},
		{[]*api.PortConfig{host(8080, 0, "tcp")}, "invalid target port 0"},
		{[]*api.PortConfig{host(70000, 80, "tcp")}, "needs a published port from 1 to 65535"},
		{[]*api.PortConfig{host(8080, 80, "sctp")}, `invalid protocol "sctp"`},
		{[]*api.PortConfig{host(8080, 80, "tcp"), host(8080, 81, "")}, "port 8080/tcp is published twice"},
	} {
		err := validatePorts(c.ports)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error with %q", c.ports, err, c.want)
		}
	}
}
