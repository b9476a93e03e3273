package imagetest

import (
	"context"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// Leftovers lists what a containerd namespace still holds of a node's
// tasks: containers, and snapshots that are not image layers.
func Leftovers(t testing.TB, socket, ns string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), ns), 30*time.Second)
	defer cancel()
	c, err := containerd.New(socket)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var left []string
	ctrs, err := c.Containers(ctx)
	if err != nil {
		return nil, err
	}
	for _, ctr := range ctrs {
		left = append(left, "container "+ctr.ID())
	}
	err = c.SnapshotService("").Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind == snapshots.KindActive {
			left = append(left, "snapshot "+info.Name)
		}
		return nil
	})
	return left, err
}
