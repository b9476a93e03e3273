package daemon

import (
	"fmt"
	"net"
	"strconv"
)

// DefaultPort is the cluster port.
const DefaultPort = 2377

// withPort adds the default cluster port to an address that has none.
func withPort(addr string, port int) (string, error) {
	if addr == "" {
		return "", nil
	}
	if _, p, err := net.SplitHostPort(addr); err == nil {
		if _, err := strconv.Atoi(p); err != nil {
			return "", fmt.Errorf("invalid port in address %q", addr)
		}
		return addr, nil
	}
	if ip := net.ParseIP(addr); ip == nil && !validHostname(addr) {
		return "", fmt.Errorf("invalid address %q: give an IP address or host name, optionally with :port", addr)
	}
	return net.JoinHostPort(addr, strconv.Itoa(port)), nil
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// advertiseAddr decides the address other nodes reach this one at: the one
// given, else the listen address if it is specific, else this host's only
// address.
func advertiseAddr(given, listen string) (string, error) {
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("invalid listen address %q: %v", listen, err)
	}
	port, _ := strconv.Atoi(lport)
	if given != "" {
		return withPort(given, port)
	}
	if ip := net.ParseIP(lhost); ip != nil && !ip.IsUnspecified() {
		return listen, nil
	}
	ip, err := onlyAddress()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(ip, lport), nil
}

// onlyAddress finds this host's single global unicast IPv4 address.
func onlyAddress() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	var found []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		found = append(found, ipn.IP.String())
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", fmt.Errorf("could not find an IP address to advertise: use --advertise-addr")
	}
	return "", fmt.Errorf("could not choose an IP address to advertise since this system has multiple addresses (%v): use --advertise-addr to choose one", found)
}

// hostOf is the host part of host:port.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
