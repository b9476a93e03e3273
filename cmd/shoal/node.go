package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/api"
)

func newNodeCommand(c *cli) *cobra.Command {
	return newGroupCommand("node", "Manage Swarm nodes",
		newNodeDemoteCommand(c),
		newNodeInspectCommand(c),
		newNodeListCommand(c),
		newNodePromoteCommand(c),
		newNodePsCommand(c),
		newNodeRemoveCommand(c),
		newNodeUpdateCommand(c),
	)
}

func newNodeListCommand(c *cli) *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List nodes in the swarm",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			resp, err := d.Control.ListNodes(cmd.Context(), &api.ListNodesRequest{})
			if err != nil {
				return err
			}
			return writeListing(c.out, nodeListing, format, quiet, nodeRows(resp))
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	addListFormatFlag(cmd.Flags(), &format)
	return cmd
}

func newNodeInspectCommand(c *cli) *cobra.Command {
	var format string
	var pretty bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] self|NODE [NODE...]",
		Short: "Display detailed information on one or more nodes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			if pretty && format != "" {
				return errors.New("cannot supply extra formatting options to the pretty template")
			}
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			var nodes []nodeJSON
			var errs []error
			for _, ref := range refs {
				n, err := getNode(cmd, d, ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				nodes = append(nodes, newNodeJSON(n))
			}
			if pretty {
				for _, n := range nodes {
					writeNodePretty(c.out, n)
				}
			} else if err := writeInspect(c.out, format, nodes); err != nil {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	cmd.Flags().BoolVar(&pretty, "pretty", false, "Print the information in a human friendly format")
	return cmd
}

// getNode fetches a node by ID, ID prefix or hostname; "self" is the node
// the CLI talks to, as in Docker.
func getNode(cmd *cobra.Command, d *daemonConn, ref string) (*api.Node, error) {
	if ref == "self" {
		info, err := d.Swarm.Info(cmd.Context(), &api.InfoRequest{})
		if err != nil {
			return nil, err
		}
		if info.GetNodeId() == "" {
			return nil, errors.New("this node is not part of a swarm")
		}
		ref = info.GetNodeId()
	}
	return d.Control.GetNode(cmd.Context(), &api.GetNodeRequest{Ref: ref})
}

func newNodePromoteCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "promote NODE [NODE...]",
		Short: "Promote one or more nodes to manager in the swarm",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			return c.changeRoles(cmd, refs, api.NodeRole_MANAGER)
		},
	}
}

func newNodeDemoteCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "demote NODE [NODE...]",
		Short: "Demote one or more nodes from manager in the swarm",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			return c.changeRoles(cmd, refs, api.NodeRole_WORKER)
		},
	}
}

// changeRoles promotes or demotes each node in turn. A failure is reported
// at the end and does not stop the nodes after it.
func (c *cli) changeRoles(cmd *cobra.Command, refs []string, role api.NodeRole) error {
	d, err := c.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	var errs []error
	for _, ref := range refs {
		n, err := d.Control.GetNode(cmd.Context(), &api.GetNodeRequest{Ref: ref})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n.GetDesiredRole() == role {
			fmt.Fprintf(c.out, "Node %s is already a %s.\n", n.GetId(), role.Name())
			continue
		}
		_, err = d.Control.UpdateNode(cmd.Context(), &api.UpdateNodeRequest{Ref: ref, DesiredRole: role.Enum()})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if role == api.NodeRole_MANAGER {
			fmt.Fprintf(c.out, "Node %s promoted to a manager in the swarm.\n", ref)
		} else {
			fmt.Fprintf(c.out, "Manager %s demoted in the swarm.\n", ref)
		}
	}
	return errors.Join(errs...)
}

func newNodeUpdateCommand(c *cli) *cobra.Command {
	var availability, role string
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] NODE",
		Short: "Update a node",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &api.UpdateNodeRequest{Ref: args[0]}
			if cmd.Flags().Changed("availability") {
				a, err := parseAvailability(availability)
				if err != nil {
					return err
				}
				req.Availability = a.Enum()
			}
			if cmd.Flags().Changed("role") {
				r, err := parseRole(role)
				if err != nil {
					return err
				}
				req.DesiredRole = r.Enum()
			}
			if req.Availability == nil && req.DesiredRole == nil {
				return errors.New(`nothing to update: set --availability ("active", "pause", "drain") or --role ("worker", "manager")`)
			}
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			if _, err := d.Control.UpdateNode(cmd.Context(), req); err != nil {
				return err
			}
			fmt.Fprintln(c.out, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&availability, "availability", "", `Availability of the node ("active", "pause", "drain")`)
	cmd.Flags().StringVar(&role, "role", "", `Role of the node ("worker", "manager")`)
	return cmd
}

func newNodeRemoveCommand(c *cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] NODE [NODE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more nodes from the swarm",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			var errs []error
			for _, ref := range refs {
				_, err := d.Control.RemoveNode(cmd.Context(), &api.RemoveNodeRequest{Ref: ref, Force: force})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(c.out, ref)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force remove a node from the swarm")
	return cmd
}

// parseAvailability reads an --availability value, in any case.
func parseAvailability(s string) (api.NodeAvailability, error) {
	switch strings.ToLower(s) {
	case "active":
		return api.NodeAvailability_ACTIVE, nil
	case "pause":
		return api.NodeAvailability_PAUSE, nil
	case "drain":
		return api.NodeAvailability_DRAIN, nil
	}
	return 0, fmt.Errorf("invalid availability %q, only active, pause and drain are supported", s)
}

// parseRole reads a role name, as in --role and `swarm join-token ROLE`.
func parseRole(s string) (api.NodeRole, error) {
	switch s {
	case "worker":
		return api.NodeRole_WORKER, nil
	case "manager":
		return api.NodeRole_MANAGER, nil
	}
	return 0, fmt.Errorf("unknown role %q: use worker or manager", s)
}

// ---------------------------------------------------------------------------
// Node rows for `node ls`

var nodeListing = listing{
	table: "table {{.ID}} {{if .Self}}*{{else}} {{ end }}\t{{.Hostname}}\t{{.Status}}\t" +
		"{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}",
	headers: map[string]string{
		"ID":            "ID",
		"Self":          "",
		"Hostname":      "HOSTNAME",
		"Status":        "STATUS",
		"Availability":  "AVAILABILITY",
		"ManagerStatus": "MANAGER STATUS",
		"EngineVersion": "ENGINE VERSION",
		"TLSStatus":     "TLS STATUS",
	},
}

// nodeRow is one line of `node ls`; its fields are the names --format
// templates use, as in Docker.
type nodeRow struct {
	ID            string
	Self          bool
	Hostname      string
	Status        string // Ready, Down, Unknown, Disconnected
	Availability  string // Active, Pause, Drain
	ManagerStatus string // Leader, Reachable, Unreachable; empty for workers
	EngineVersion string
	TLSStatus     string
}

func (r nodeRow) MarshalJSON() ([]byte, error) { return marshalRow(r) }

// nodeRows turns a ListNodes answer into rows sorted by hostname.
func nodeRows(resp *api.ListNodesResponse) []nodeRow {
	rows := make([]nodeRow, 0, len(resp.GetNodes()))
	for _, n := range resp.GetNodes() {
		rows = append(rows, nodeRow{
			ID:            n.GetId(),
			Self:          n.GetId() == resp.GetSelfId(),
			Hostname:      n.GetHostname(),
			Status:        prettyPrint(n.GetState().Name()),
			Availability:  prettyPrint(n.GetAvailability().Name()),
			ManagerStatus: managerStatusCell(n.GetManagerStatus()),
			EngineVersion: n.GetEngineVersion(),
			TLSStatus:     "Ready",
		})
	}
	slices.SortStableFunc(rows, func(a, b nodeRow) int {
		switch {
		case naturalLess(a.Hostname, b.Hostname):
			return -1
		case naturalLess(b.Hostname, a.Hostname):
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return rows
}

func managerStatusCell(ms *api.ManagerStatus) string {
	switch {
	case ms == nil:
		return ""
	case ms.GetLeader():
		return "Leader"
	}
	return prettyPrint(ms.GetReachability().Name())
}
