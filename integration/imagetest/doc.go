// Package imagetest is the image and runtime side of the integration tests:
// it runs containerd for shoal daemons to share, runs a registry on a test
// host, and builds the test images from this machine's own binaries, with no
// image from outside.
//
//	socket := imagetest.SharedContainerd(t)       // or StartContainerd(t)
//	lan := testhost.NewLAN(t)
//	reg := lan.AddHost(t, "registry")
//	addr := imagetest.StartRegistry(t, reg)       // "10.77.K.11:5000", plain HTTP
//	imgs := imagetest.PushImages(t, reg, addr)    // imgs.Nginx, imgs.Shell
//	// start daemons on other hosts of lan with --containerd socket,
//	// treating addr as an insecure registry; create services of imgs.Nginx.
//
// Where things run. containerd runs in the root network namespace; shoal
// daemons on test hosts reach it through its unix socket, a file, and each
// keeps to a containerd namespace of its own. The registry runs in its test
// host's network namespace, so it is on the LAN and nowhere else: the
// daemons, which pull through the containerd client in their own process,
// reach it, and the test process does not. So the test process builds
// images in memory and writes them as OCI layouts, and the small helper
// imagectl (internal/imagectl, see Tool), run on a host through
// host.Command, pushes them, probes the registry and checks what it holds.
//
// The images: NginxImage (nginx serving NginxIndex on port 80) and
// ShellImage (dash, sleep, true, false; entrypoint sh -c). Each is one
// layer of files copied from this machine with the libraries ldd lists,
// stamped with a fixed time, so that the same machine always builds the
// same digests. Package imagebuild builds them, with no test dependencies,
// so that the playground builds the same images.
//
// Everything a helper starts is stopped when its test ends, passed or
// failed, and the tail of its log goes to t.Log when the test failed; the
// shared containerd and the helper binary are the exception and go in
// Cleanup, which the package's TestMain must call. A test binary that dies
// leaves a containerd directory (/tmp/shct-*) with shims and containers
// behind; the next start of a containerd sweeps it (see Sweep).
//
// Missing tools (containerd, runc, docker-registry, nginx) skip a test, or
// fail it when CI=true.
//
// This package must not know about shoal's own code: it is plumbing for the
// tests that start shoal daemons.
package imagetest
