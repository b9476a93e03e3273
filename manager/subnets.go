package manager

import (
	"fmt"
	"net/netip"

	"github.com/shoal-dev/shoal/api"
)

// Docker's default address pool for node subnets.
const (
	DefaultAddrPool   = "10.0.0.0/8"
	DefaultSubnetSize = 24
)

// NextSubnet returns the first subnet of the given size in pool that no
// node has, so task addresses never collide across nodes.
func NextSubnet(pool string, size int, nodes []*api.Node) (string, error) {
	p, err := netip.ParsePrefix(pool)
	if err != nil {
		return "", fmt.Errorf("address pool %q: %v", pool, err)
	}
	p = p.Masked()
	if !p.Addr().Is4() || size < p.Bits() || size > 30 {
		return "", fmt.Errorf("address pool %s with subnets of /%d: use an IPv4 pool and a mask length between its own and 30", pool, size)
	}
	used := map[netip.Prefix]bool{}
	for _, n := range nodes {
		if s, err := netip.ParsePrefix(n.Subnet); err == nil {
			used[s.Masked()] = true
		}
	}
	step := uint32(1) << (32 - size)
	start := ipToUint(p.Addr())
	count := uint64(1) << (size - p.Bits())
	for i := uint64(0); i < count; i++ {
		s := netip.PrefixFrom(uintToIP(start+uint32(i)*step), size)
		if !used[s] {
			return s.String(), nil
		}
	}
	return "", fmt.Errorf("address pool %s has no free /%d subnet left for another node", pool, size)
}

func ipToUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func uintToIP(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
