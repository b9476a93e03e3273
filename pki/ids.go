package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"strings"
)

const (
	// idLen is the length of an ID or secret: 128 bits need 25 base36 digits.
	idLen = 25
	// digestLen is the length of a CA digest: 256 bits need 50 base36 digits.
	digestLen = 50
)

// NewID returns a random 25-character base36 ID ([0-9a-z]) from 128 random
// bits, as Docker Swarm uses for node and cluster IDs.
func NewID() string {
	return randomBase36()
}

// NewSecret returns a random join-token secret: 16 random bytes written as 25
// base36 characters.
func NewSecret() string {
	return randomBase36()
}

// Digest returns the SHA-256 digest of a CA certificate bundle (its PEM bytes,
// exactly as served) as 50 base36 characters. This is the first field of a
// join token.
func Digest(caCertPEM []byte) string {
	sum := sha256.Sum256(caCertPEM)
	return base36(sum[:], digestLen)
}

func randomBase36() string {
	var b [16]byte
	// crypto/rand.Read never returns an error; it crashes the program
	// irrecoverably if the system's randomness is unavailable.
	_, _ = rand.Read(b[:])
	return base36(b[:], idLen)
}

// base36 writes b as a big-endian number in lower-case base36, left-padded
// with '0' to width characters.
func base36(b []byte, width int) string {
	s := new(big.Int).SetBytes(b).Text(36)
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}
