package pki

import (
	"errors"
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	ca := newTestCA(t)
	secret := NewSecret()
	s := FormatToken(ca.CertPEM, secret)

	if !strings.HasPrefix(s, "SWMTKN-1-") || len(s) != len("SWMTKN-1-")+50+1+25 {
		t.Fatalf("FormatToken = %q, want SWMTKN-1-<50>-<25>", s)
	}
	tok, err := ParseToken(s)
	if err != nil {
		t.Fatalf("ParseToken(%q): %v", s, err)
	}
	want := Token{CADigest: Digest(ca.CertPEM), Secret: secret}
	if tok != want {
		t.Fatalf("ParseToken = %+v, want %+v", tok, want)
	}
	if tok.String() != s {
		t.Fatalf("String() = %q, want %q", tok.String(), s)
	}
}

func TestParseTokenRejects(t *testing.T) {
	digest := Digest([]byte("some CA"))
	secret := NewSecret()
	valid := "SWMTKN-1-" + digest + "-" + secret

	tests := []struct {
		name, token, wantErr string
	}{
		{"empty", "", "the token is empty"},
		{"leading space", " " + valid, "white space"},
		{"trailing newline", valid + "\n", "white space"},
		{"lower-case prefix", strings.Replace(valid, "SWMTKN", "swmtkn", 1), `starts with "SWMTKN-1-"`},
		{"other prefix", "XXXTKN-1-" + digest + "-" + secret, `starts with "SWMTKN-1-"`},
		{"secret alone", secret, `starts with "SWMTKN-1-"`},
		{"prefix alone", "SWMTKN", "want 4 fields"},
		{"version 2", "SWMTKN-2-" + digest + "-" + secret, `unsupported token version "2", want "1"`},
		{"empty version", "SWMTKN--" + digest + "-" + secret, `unsupported token version ""`},
		{"no secret", "SWMTKN-1-" + digest, "got 3"},
		{"extra field", valid + "-extra", "got 5"},
		{"dash in secret", "SWMTKN-1-" + digest + "-" + secret[:10] + "-" + secret[11:], "got 5"},
		{"empty digest", "SWMTKN-1--" + secret, "the CA digest has 0 characters, want 50"},
		{"short digest", "SWMTKN-1-" + digest[1:] + "-" + secret, "the CA digest has 49 characters, want 50"},
		{"long digest", "SWMTKN-1-0" + digest + "-" + secret, "the CA digest has 51 characters, want 50"},
		{"swapped fields", "SWMTKN-1-" + secret + "-" + digest, "the CA digest has 25 characters, want 50"},
		{"upper-case digest", "SWMTKN-1-" + strings.ToUpper(digest[:1]) + "Z" + digest[2:] + "-" + secret, "the CA digest has a character outside [0-9a-z] at position 2"},
		{"punctuation in digest", "SWMTKN-1-" + digest[:49] + "_-" + secret, "at position 50"},
		{"digest too big", "SWMTKN-1-" + strings.Repeat("z", 50) + "-" + secret, "the CA digest is not a 256-bit value"},
		{"empty secret", "SWMTKN-1-" + digest + "-", "the secret has 0 characters, want 25"},
		{"short secret", "SWMTKN-1-" + digest + "-" + secret[:24], "the secret has 24 characters, want 25"},
		{"long secret", valid + "0", "the secret has 26 characters, want 25"},
		{"upper-case secret", "SWMTKN-1-" + digest + "-A" + secret[1:], "the secret has a character outside [0-9a-z] at position 1"},
		{"non-ASCII secret", "SWMTKN-1-" + digest + "-é" + secret[2:], "the secret has a character outside [0-9a-z] at position 1"},
		{"secret too big", "SWMTKN-1-" + digest + "-" + strings.Repeat("z", 25), "the secret is not a 128-bit value"},
		{"secret just too big", "SWMTKN-1-" + digest + "-f5lxx1zz5pnorynqglhzmsp34", "not a 128-bit value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := ParseToken(tt.token)
			if err == nil {
				t.Fatalf("ParseToken(%q) = %+v, want error", tt.token, tok)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error %q does not wrap ErrInvalidToken", err)
			}
			if !strings.HasPrefix(err.Error(), "invalid join token: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want %q in it", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}

func TestParseTokenLimits(t *testing.T) {
	// The largest values that fit the field widths are accepted.
	s := "SWMTKN-1-6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof-f5lxx1zz5pnorynqglhzmsp33"
	if _, err := ParseToken(s); err != nil {
		t.Fatalf("ParseToken(%q): %v", s, err)
	}
	s = "SWMTKN-1-" + strings.Repeat("0", 50) + "-" + strings.Repeat("0", 25)
	if _, err := ParseToken(s); err != nil {
		t.Fatalf("ParseToken(%q): %v", s, err)
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("SWMTKN-1-" + Digest([]byte("ca")) + "-" + NewSecret())
	f.Add("SWMTKN-1-6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof-f5lxx1zz5pnorynqglhzmsp33")
	f.Add("SWMTKN-2-x-y")
	f.Add("SWMTKN-1--")
	f.Add("SWMTKN")
	f.Add("")
	f.Add("-")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("ParseToken(%q) error %q does not wrap ErrInvalidToken", s, err)
			}
			return
		}
		if got := tok.String(); got != s {
			t.Fatalf("ParseToken(%q) re-formats as %q", s, got)
		}
		if len(tok.CADigest) != 50 || len(tok.Secret) != 25 {
			t.Fatalf("ParseToken(%q) = %+v: wrong field lengths", s, tok)
		}
	})
}

func TestCheckCA(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	tok, err := ParseToken(FormatToken(ca.CertPEM, NewSecret()))
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.CheckCA(ca.CertPEM); err != nil {
		t.Fatalf("CheckCA(own CA) = %v, want nil", err)
	}

	wantText := "remote CA does not match fingerprint. Expected: " + Digest(ca.CertPEM)
	for name, pemBytes := range map[string][]byte{
		"another CA":      other.CertPEM,
		"one byte more":   append(append([]byte(nil), ca.CertPEM...), '\n'),
		"empty":           nil,
		"CA and another":  append(append([]byte(nil), ca.CertPEM...), other.CertPEM...),
		"truncated PEM":   ca.CertPEM[:len(ca.CertPEM)-1],
		"different bytes": []byte("not a certificate"),
	} {
		err := tok.CheckCA(pemBytes)
		if !errors.Is(err, ErrCAMismatch) {
			t.Errorf("%s: CheckCA = %v, want ErrCAMismatch", name, err)
			continue
		}
		if err.Error() != wantText {
			t.Errorf("%s: error = %q, want %q", name, err, wantText)
		}
	}
}

func TestSecretEqual(t *testing.T) {
	a := NewSecret()
	b := NewSecret()
	tests := []struct {
		x, y string
		want bool
	}{
		{a, a, true},
		{a, strings.Clone(a), true},
		{a, b, false},
		{a, a[:24], false},
		{a, "", false},
		{"", "", false}, // an unset secret never matches
	}
	for _, tt := range tests {
		if got := SecretEqual(tt.x, tt.y); got != tt.want {
			t.Errorf("SecretEqual(%q, %q) = %v, want %v", tt.x, tt.y, got, tt.want)
		}
	}
}
