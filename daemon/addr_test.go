package daemon

import (
	"strings"
	"testing"
)

func TestWithPort(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"10.0.0.1", "10.0.0.1:2377", ""},
		{"10.0.0.1:4000", "10.0.0.1:4000", ""},
		{"manager-1", "manager-1:2377", ""},
		{"[::1]:2377", "[::1]:2377", ""},
		{"10.0.0.1:http", "", "invalid port"},
		{"not an address", "", "invalid address"},
		{"", "", ""},
	}
	for _, tc := range tests {
		got, err := withPort(tc.in, DefaultPort)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("withPort(%q) = %q, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("withPort(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestAdvertiseAddr(t *testing.T) {
	tests := []struct{ given, listen, want string }{
		{"10.0.0.5", "0.0.0.0:2377", "10.0.0.5:2377"},
		{"10.0.0.5", "0.0.0.0:4000", "10.0.0.5:4000"}, // the port follows --listen-addr
		{"10.0.0.5:5000", "0.0.0.0:4000", "10.0.0.5:5000"},
		{"", "10.0.0.7:2377", "10.0.0.7:2377"}, // a specific listen address is advertised
	}
	for _, tc := range tests {
		got, err := advertiseAddr(tc.given, tc.listen)
		if err != nil || got != tc.want {
			t.Errorf("advertiseAddr(%q, %q) = %q, %v; want %q", tc.given, tc.listen, got, err, tc.want)
		}
	}
	if _, err := advertiseAddr("", "nonsense"); err == nil {
		t.Error("a listen address without a port was accepted")
	}
}
