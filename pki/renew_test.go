package pki

import (
	"crypto/x509"
	"math/rand/v2"
	"testing"
	"time"
)

func TestRenewAt(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cert := &x509.Certificate{NotBefore: start, NotAfter: start.Add(DefaultNodeCertExpiry)}
	life := cert.NotAfter.Sub(cert.NotBefore)
	lo, hi := start.Add(life/2), start.Add(life*8/10)

	rnd := rand.New(rand.NewPCG(1, 2))
	minFrac, maxFrac := 1.0, 0.0
	const draws = 10000
	for range draws {
		at := RenewAt(cert, rnd)
		if at.Before(lo) || at.After(hi) {
			t.Fatalf("RenewAt = %v, want within [%v, %v]", at, lo, hi)
		}
		frac := float64(at.Sub(start)) / float64(life)
		minFrac, maxFrac = min(minFrac, frac), max(maxFrac, frac)
	}
	// The draws spread over the window rather than bunching.
	if minFrac > 0.51 || maxFrac < 0.79 {
		t.Fatalf("%d draws spanned %.3f..%.3f of the life, want about 0.5..0.8", draws, minFrac, maxFrac)
	}

	if at := RenewAt(cert, nil); at.Before(lo) || at.After(hi) {
		t.Fatalf("RenewAt(nil rand) = %v, want within [%v, %v]", at, lo, hi)
	}
	broken := &x509.Certificate{NotBefore: start, NotAfter: start.Add(-time.Hour)}
	if at := RenewAt(broken, rnd); !at.Equal(start) {
		t.Fatalf("RenewAt(NotAfter before NotBefore) = %v, want NotBefore %v", at, start)
	}
}
