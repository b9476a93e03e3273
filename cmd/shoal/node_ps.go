package main

import (
	"context"
	"errors"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

// `node ps [NODE...]`: the tasks on nodes (default the node the CLI talks
// to), in `service ps`'s table, filters and formats.
func newNodePsCommand(c *cli) *cobra.Command {
	return newTaskListCommand(c, &cobra.Command{
		Use:   "ps [OPTIONS] [NODE...]",
		Short: "List tasks running on one or more nodes, defaults to current node",
	}, listNodeTasks)
}

// listNodeTasks fetches the tasks on each node named by refs (ID, ID
// prefix, hostname, or self). Nodes that do not exist are returned as
// Docker's "No such node" lines; if none exists that is the error.
func listNodeTasks(ctx context.Context, d *daemonConn, refs []string) (serviceTasks, []string, error) {
	list := serviceTasks{serviceNames: map[string]string{}, nodeNames: map[string]string{}}
	var notFound []string
	seen := map[string]bool{}
	found := 0
	if len(refs) == 0 {
		refs = []string{"self"}
	}
	for _, ref := range refs {
		if ref == "self" {
			info, err := d.Swarm.Info(ctx, &api.InfoRequest{})
			if err != nil {
				return list, nil, err
			}
			ref = info.GetNodeId()
		}
		n, err := d.Control.GetNode(ctx, &api.GetNodeRequest{Ref: ref})
		if status.Code(err) == codes.NotFound {
			notFound = append(notFound, "No such node: "+ref)
			continue
		}
		if err != nil {
			return list, nil, err
		}
		found++
		if seen[n.GetId()] {
			continue
		}
		seen[n.GetId()] = true
		resp, err := d.Control.ListTasks(ctx, &api.ListTasksRequest{Node: n.GetId()})
		if err != nil {
			return list, nil, err
		}
		list.tasks = append(list.tasks, resp.GetTasks()...)
		for id, name := range resp.GetNodeNames() {
			list.nodeNames[id] = name
		}
	}
	if found == 0 {
		return list, nil, errors.New(strings.Join(notFound, "\n"))
	}
	return list, notFound, nil
}
