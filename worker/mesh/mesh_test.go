package mesh

import (
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/api"
)

func TestRules(t *testing.T) {
	cfg := &api.NetworkConfig{
		Routes: []*api.Route{{Subnet: "10.0.1.0/24", Via: "192.0.2.1", NodeId: "a"}, {Subnet: "10.0.2.0/24", Via: "192.0.2.2", NodeId: "b"}},
		Ingress: []*api.IngressPort{
			{Service: "web", Protocol: "tcp", Published: 8080, Target: 80, Backends: []string{"10.0.1.4:80", "10.0.1.5:80", "10.0.2.4:80"}},
			{Service: "dns", Protocol: "udp", Published: 53, Target: 5353, Backends: []string{"10.0.2.9:5353"}},
			{Service: "idle", Protocol: "tcp", Published: 9000, Target: 90},
		},
	}
	nat, filter := Rules(cfg, "a")
	wantNat := `*nat
:SHOAL-INGRESS - [0:0]
:SHOAL-POSTROUTING - [0:0]
-A SHOAL-INGRESS -p tcp -m tcp --dport 8080 -j MARK --set-xmark 0x4d0000/0x4d0000
-A SHOAL-INGRESS -p tcp -m tcp --dport 8080 -m statistic --mode random --probability 0.33333 -j DNAT --to-destination 10.0.1.4:80
-A SHOAL-INGRESS -p tcp -m tcp --dport 8080 -m statistic --mode random --probability 0.50000 -j DNAT --to-destination 10.0.1.5:80
-A SHOAL-INGRESS -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.2.4:80
-A SHOAL-INGRESS -p udp -m udp --dport 53 -j MARK --set-xmark 0x4d0000/0x4d0000
-A SHOAL-INGRESS -p udp -m udp --dport 53 -j DNAT --to-destination 10.0.2.9:5353
-A SHOAL-POSTROUTING -m mark --mark 0x4d0000/0x4d0000 -j MASQUERADE
COMMIT
`
	if nat != wantNat {
		t.Errorf("nat rules:\n%s\nwant:\n%s", nat, wantNat)
	}
	if strings.Contains(nat, "9000") {
		t.Errorf("a port without backends got rules: nothing should answer on it")
	}
	wantFilter := `*filter
:SHOAL-FORWARD - [0:0]
-A SHOAL-FORWARD -m mark --mark 0x4d0000/0x4d0000 -j ACCEPT
-A SHOAL-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A SHOAL-FORWARD -s 192.0.2.2 -d 10.0.1.0/24 -j ACCEPT
COMMIT
`
	if filter != wantFilter {
		t.Errorf("filter rules:\n%s\nwant:\n%s", filter, wantFilter)
	}

	// Cleared: the chains are declared, and so emptied, with no rule that
	// sends anything anywhere.
	nat, filter = Rules(nil, "a")
	if strings.Contains(nat, "DNAT") || strings.Contains(filter, "-A ") {
		t.Errorf("rules of an empty mesh:\n%s%s", nat, filter)
	}
}
