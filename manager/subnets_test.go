package manager

import (
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestNextSubnet(t *testing.T) {
	nodes := func(subnets ...string) []*api.Node {
		var out []*api.Node
		for _, s := range subnets {
			out = append(out, &api.Node{Subnet: s})
		}
		return out
	}
	tests := []struct {
		pool  string
		size  int
		used  []*api.Node
		want  string
		isErr bool
	}{
		{"10.0.0.0/8", 24, nil, "10.0.0.0/24", false},
		{"10.0.0.0/8", 24, nodes("10.0.0.0/24", "10.0.2.0/24"), "10.0.1.0/24", false},
		{"10.10.0.0/16", 26, nodes("10.10.0.0/26"), "10.10.0.64/26", false},
		{"10.0.0.0/30", 30, nodes("10.0.0.0/30"), "", true},
		{"10.0.0.0/24", 16, nil, "", true},
		{"fd00::/8", 64, nil, "", true},
		{"nonsense", 24, nil, "", true},
	}
	for _, tc := range tests {
		got, err := NextSubnet(tc.pool, tc.size, tc.used)
		if (err != nil) != tc.isErr || got != tc.want {
			t.Errorf("NextSubnet(%s, /%d) = %q, %v; want %q (error %v)", tc.pool, tc.size, got, err, tc.want, tc.isErr)
		}
	}
}
