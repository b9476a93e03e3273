package main

import (
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/shoal-dev/shoal/api"
)

// nodeJSON is a node in the shape of Docker's API (`docker node inspect`),
// so that templates such as {{.Status.Addr}} and {{.Spec.Role}} work as they
// do with Docker.
type nodeJSON struct {
	ID            string
	Version       objectVersion
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Spec          nodeSpec
	Description   nodeDescription
	Status        nodeStatus
	ManagerStatus *managerStatus `json:",omitempty"`
}

type objectVersion struct {
	Index uint64
}

type nodeSpec struct {
	Labels       map[string]string
	Role         string // worker, manager
	Availability string // active, pause, drain
}

type nodeDescription struct {
	Hostname string `json:",omitempty"`
	Platform platform
	Engine   engineDescription
}

type platform struct {
	Architecture string `json:",omitempty"`
	OS           string `json:",omitempty"`
}

type engineDescription struct {
	EngineVersion string `json:",omitempty"`
}

type nodeStatus struct {
	State   string // unknown, down, ready, disconnected
	Message string `json:",omitempty"`
	Addr    string `json:",omitempty"`
}

type managerStatus struct {
	Leader       bool   `json:",omitempty"`
	Reachability string // unknown, unreachable, reachable
	Addr         string `json:",omitempty"`
}

func newNodeJSON(n *api.Node) nodeJSON {
	labels := n.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	v := nodeJSON{
		ID:        n.GetId(),
		CreatedAt: unixNano(n.GetCreatedUnixNano()),
		UpdatedAt: unixNano(n.GetUpdatedUnixNano()),
		Spec: nodeSpec{
			Labels:       labels,
			Role:         n.GetDesiredRole().Name(),
			Availability: n.GetAvailability().Name(),
		},
		Description: nodeDescription{
			Hostname: n.GetHostname(),
			Platform: platform{Architecture: n.GetArch(), OS: n.GetOs()},
			Engine:   engineDescription{EngineVersion: n.GetEngineVersion()},
		},
		Status: nodeStatus{
			State:   n.GetState().Name(),
			Message: n.GetStatusMessage(),
			Addr:    hostOnly(n.GetAddr()),
		},
	}
	if ms := n.GetManagerStatus(); ms != nil {
		v.ManagerStatus = &managerStatus{
			Leader:       ms.GetLeader(),
			Reachability: ms.GetReachability().Name(),
			Addr:         ms.GetAddr(),
		}
	}
	return v
}

func unixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// hostOnly drops a port: Docker's Status.Addr is the node's IP address.
func hostOnly(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// writeNodePretty prints a node as `docker node inspect --pretty` does. The
// tabs line the values up at column 24 on a terminal, as in Docker.
func writeNodePretty(w io.Writer, n nodeJSON) {
	fmt.Fprintf(w, "ID:\t\t\t%s\n", n.ID)
	if len(n.Spec.Labels) > 0 {
		fmt.Fprintln(w, "Labels:")
		keys := make([]string, 0, len(n.Spec.Labels))
		for k := range n.Spec.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if v := n.Spec.Labels[k]; v != "" {
				fmt.Fprintf(w, " - %s=%s\n", k, v)
			} else {
				fmt.Fprintf(w, " - %s\n", k)
			}
		}
	}
	fmt.Fprintf(w, "Hostname:\t\t%s\n", n.Description.Hostname)
	fmt.Fprintf(w, "Joined at:\t\t%s\n", prettyPrint(n.CreatedAt.String()))
	fmt.Fprintln(w, "Status:")
	fmt.Fprintf(w, " State:\t\t\t%s\n", prettyPrint(n.Status.State))
	if n.Status.Message != "" {
		fmt.Fprintf(w, " Message:\t\t%s\n", prettyPrint(n.Status.Message))
	}
	fmt.Fprintf(w, " Availability:\t\t%s\n", prettyPrint(n.Spec.Availability))
	if n.Status.Addr != "" {
		fmt.Fprintf(w, " Address:\t\t%s\n", n.Status.Addr)
	}
	if ms := n.ManagerStatus; ms != nil {
		fmt.Fprintln(w, "Manager Status:")
		fmt.Fprintf(w, " Address:\t\t%s\n", ms.Addr)
		fmt.Fprintf(w, " Raft Status:\t\t%s\n", prettyPrint(ms.Reachability))
		fmt.Fprintf(w, " Leader:\t\t%s\n", yesNo(ms.Leader))
	}
	fmt.Fprintln(w, "Platform:")
	fmt.Fprintf(w, " Operating System:\t%s\n", n.Description.Platform.OS)
	fmt.Fprintf(w, " Architecture:\t\t%s\n", n.Description.Platform.Architecture)
	fmt.Fprintf(w, "Engine Version:\t\t%s\n", n.Description.Engine.EngineVersion)
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}
