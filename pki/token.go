package pki

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

const (
	tokenPrefix  = "SWMTKN"
	tokenVersion = "1"
)

// ErrInvalidToken is wrapped by every error ParseToken returns; the wrapping
// message says what is wrong with the token.
var ErrInvalidToken = errors.New("invalid join token")

// ErrCAMismatch means the CA a manager served is not the one the join token
// pins. Token.CheckCA wraps it with the expected digest.
var ErrCAMismatch = errors.New("remote CA does not match fingerprint")

// Token is a parsed join token, SWMTKN-1-<CADigest>-<Secret>.
type Token struct {
	// CADigest is Digest of the root CA's PEM bytes: 50 base36 characters.
	CADigest string
	// Secret is the role's join secret: 25 base36 characters.
	Secret string
}

// FormatToken returns the join token that pins the CA in caCertPEM and
// carries secret (as made by NewSecret).
func FormatToken(caCertPEM []byte, secret string) string {
	return Token{CADigest: Digest(caCertPEM), Secret: secret}.String()
}

// String returns the token in its SWMTKN-1-<digest>-<secret> form.
func (t Token) String() string {
	return tokenPrefix + "-" + tokenVersion + "-" + t.CADigest + "-" + t.Secret
}

// ParseToken parses a join token. It does not trim white space: a caller that
// reads a token from a file or flag should trim it first. Errors wrap
// ErrInvalidToken and never repeat the token's secret.
func ParseToken(s string) (Token, error) {
	invalid := func(format string, args ...any) (Token, error) {
		return Token{}, fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return invalid("the token is empty")
	}
	if strings.TrimSpace(s) != s {
		return invalid("the token has leading or trailing white space")
	}
	parts := strings.Split(s, "-")
	if parts[0] != tokenPrefix {
		return invalid("a join token starts with %q", tokenPrefix+"-"+tokenVersion+"-")
	}
	if len(parts) > 1 && parts[1] != tokenVersion {
		return invalid("unsupported token version %.10q, want %q", parts[1], tokenVersion)
	}
	if len(parts) != 4 {
		return invalid("want 4 fields separated by '-' (SWMTKN-1-<CA digest>-<secret>), got %d", len(parts))
	}
	if err := checkBase36("CA digest", parts[2], digestLen, 256); err != nil {
		return invalid("%v", err)
	}
	if err := checkBase36("secret", parts[3], idLen, 128); err != nil {
		return invalid("%v", err)
	}
	return Token{CADigest: parts[2], Secret: parts[3]}, nil
}

// checkBase36 checks that v is exactly width lower-case base36 digits holding
// a number of at most bits bits.
func checkBase36(what, v string, width, bits int) error {
	if len(v) != width {
		return fmt.Errorf("the %s has %d characters, want %d", what, len(v), width)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') {
			return fmt.Errorf("the %s has a character outside [0-9a-z] at position %d", what, i+1)
		}
	}
	n, ok := new(big.Int).SetString(v, 36)
	if !ok || n.BitLen() > bits {
		return fmt.Errorf("the %s is not a %d-bit value", what, bits)
	}
	return nil
}

// CheckCA checks that caCertPEM, as fetched from a manager, is the CA the
// token pins. A mismatch returns an error wrapping ErrCAMismatch.
func (t Token) CheckCA(caCertPEM []byte) error {
	if subtle.ConstantTimeCompare([]byte(Digest(caCertPEM)), []byte(t.CADigest)) != 1 {
		return fmt.Errorf("%w. Expected: %s", ErrCAMismatch, t.CADigest)
	}
	return nil
}

// SecretEqual compares two join secrets in constant time (for equal lengths;
// secrets always have the same length). An empty secret matches nothing, so
// an unset secret can never be guessed.
func SecretEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
