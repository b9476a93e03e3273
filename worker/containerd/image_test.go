package containerd

import (
	"strings"
	"testing"
)

func TestRegistryHostsPutTheMirrorsBeforeDockerHub(t *testing.T) {
	hosts := registryHosts(Config{RegistryMirrors: []string{"http://10.77.0.1:5000"}})
	hs, err := hosts("docker.io")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) < 2 {
		t.Fatalf("docker.io: got %d hosts, want the mirror and Docker Hub", len(hs))
	}
	if hs[0].Host != "10.77.0.1:5000" || hs[0].Scheme != "http" {
		t.Errorf("first host: %s://%s, want http://10.77.0.1:5000", hs[0].Scheme, hs[0].Host)
	}
	if last := hs[len(hs)-1]; last.Host != "registry-1.docker.io" || last.Scheme != "https" {
		t.Errorf("last host: %s://%s, want Docker Hub over https", last.Scheme, last.Host)
	}

	// Other registries are not mirrored.
	hs, err = hosts("quay.io")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Host != "quay.io" {
		t.Errorf("quay.io: got %+v, want quay.io alone", hs)
	}
}

func TestValidateRejectsAMirrorThatIsNotAURL(t *testing.T) {
	for _, m := range []string{"10.77.0.1:5000", "ftp://host", "http://host/path", "http://"} {
		cfg := Config{StateDir: "/tmp/x", Namespace: "n", Bridge: "b", RegistryMirrors: []string{m}}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "registry mirror") {
			t.Errorf("mirror %q: got %v, want an error naming the mirror", m, err)
		}
	}
	ok := Config{StateDir: "/tmp/x", Namespace: "n", Bridge: "b", RegistryMirrors: []string{"https://mirror.example:443"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("a good mirror: %v", err)
	}
}
