package daemon

import (
	"context"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// stop holds mu while it waits for the agent, and the agent waits for its
// OnMessage call: a session message that arrives then must not wait for mu
// for good.
func TestOnSessionGivesUpWhenTheAgentStops(t *testing.T) {
	d := &Daemon{mu: newCtxMutex(), kick: make(chan struct{}, 1)}
	d.mu.Lock() // as stop does
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.onSession(ctx, &api.SessionMessage{Node: &api.Node{DesiredRole: api.NodeRole_MANAGER}})
	}()
	select {
	case <-done:
		t.Fatal("onSession returned while mu was held and the agent still ran")
	case <-time.After(50 * time.Millisecond):
	}
	cancel() // stop cancels the agent
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("onSession still waits for mu after the agent's context ended: stop would deadlock")
	}
	if len(d.mu) != 1 {
		t.Error("onSession took or released the mutex that stop holds")
	}
	if got := api.NodeRole(d.desired.Load()); got != api.NodeRole_MANAGER {
		t.Errorf("the desired role was not recorded: %v", got)
	}
	d.mu.Unlock()
}
