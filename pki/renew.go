package pki

import (
	"crypto/x509"
	"math/rand/v2"
	"time"
)

// RenewAt returns when a node should renew cert: a random time between 50% and
// 80% of its life (NotBefore to NotAfter), so that nodes issued together do
// not all renew together. rnd may be nil to use the shared source.
func RenewAt(cert *x509.Certificate, rnd *rand.Rand) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	if life <= 0 {
		return cert.NotBefore
	}
	f := rand.Float64
	if rnd != nil {
		f = rnd.Float64
	}
	frac := 0.5 + 0.3*f()
	return cert.NotBefore.Add(time.Duration(frac * float64(life)))
}
