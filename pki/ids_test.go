package pki

import (
	"bytes"
	"regexp"
	"testing"
)

var base36RE = regexp.MustCompile(`^[0-9a-z]+$`)

func TestNewIDAndSecret(t *testing.T) {
	for name, gen := range map[string]func() string{"NewID": NewID, "NewSecret": NewSecret} {
		seen := make(map[string]bool)
		for range 1000 {
			v := gen()
			if len(v) != 25 || !base36RE.MatchString(v) {
				t.Fatalf("%s() = %q, want 25 characters of [0-9a-z]", name, v)
			}
			if seen[v] {
				t.Fatalf("%s() repeated %q", name, v)
			}
			seen[v] = true
		}
	}
}

func TestBase36(t *testing.T) {
	ones16 := bytes.Repeat([]byte{0xff}, 16)
	ones32 := bytes.Repeat([]byte{0xff}, 32)
	tests := []struct {
		in    []byte
		width int
		want  string
	}{
		{[]byte{0}, 25, "0000000000000000000000000"},
		{[]byte{1}, 25, "0000000000000000000000001"},
		{[]byte{35}, 25, "000000000000000000000000z"},
		{[]byte{36}, 25, "0000000000000000000000010"},
		{ones16, 25, "f5lxx1zz5pnorynqglhzmsp33"},                          // 2^128-1 fits 25
		{ones32, 50, "6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof"}, // 2^256-1 fits 50
	}
	for _, tt := range tests {
		if got := base36(tt.in, tt.width); got != tt.want {
			t.Errorf("base36(%x, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
		}
	}
}

func TestDigest(t *testing.T) {
	// Expected values computed independently (Python: SHA-256, int, base36).
	tests := map[string]string{
		"":      "5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p",
		"hello": "14bu24ea7cq4jhmrgj4a3jrn1v6vem8ualnohxyeq239y1gobo",
	}
	for in, want := range tests {
		if got := Digest([]byte(in)); got != want {
			t.Errorf("Digest(%q) = %q, want %q", in, got, want)
		}
	}
}
