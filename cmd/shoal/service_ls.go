package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/api"
)

func newServiceListCommand(c *cli) *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List services",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			resp, err := d.Control.ListServices(cmd.Context(), &api.ListServicesRequest{})
			if err != nil {
				return err
			}
			return writeListing(c.out, serviceListing, format, quiet, serviceRows(resp.GetServices()))
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	addListFormatFlag(cmd.Flags(), &format)
	return cmd
}

var serviceListing = listing{
	table: "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}",
	headers: map[string]string{
		"ID":       "ID",
		"Name":     "NAME",
		"Mode":     "MODE",
		"Replicas": "REPLICAS",
		"Image":    "IMAGE",
		"Ports":    "PORTS",
	},
}

// serviceRow is one line of `service ls`; its fields are the names --format
// templates use, as in Docker.
type serviceRow struct {
	ID       string // cut to 12 characters
	Name     string
	Mode     string // replicated
	Replicas string // running/desired
	Image    string
	Ports    string
}

func (r serviceRow) MarshalJSON() ([]byte, error) { return marshalRow(r) }

// serviceRows turns a ListServices answer into rows sorted by name.
func serviceRows(services []*api.ServiceSummary) []serviceRow {
	rows := make([]serviceRow, 0, len(services))
	for _, s := range services {
		svc := s.GetService()
		rows = append(rows, serviceRow{
			ID:       truncateID(svc.GetId()),
			Name:     svc.GetSpec().GetName(),
			Mode:     "replicated",
			Replicas: fmt.Sprintf("%d/%d", s.GetRunning(), svc.GetSpec().GetReplicas()),
			Image:    displayImage(svc.GetSpec().GetContainer().GetImage()),
			// As in Docker: the ports open on every node. service ps
			// shows the host-mode ones, per task.
			Ports: portsText(api.PortsIn(svc.GetSpec().GetContainer().GetPorts(), api.PortConfig_INGRESS)),
		})
	}
	slices.SortStableFunc(rows, func(a, b serviceRow) int {
		switch {
		case naturalLess(a.Name, b.Name):
			return -1
		case naturalLess(b.Name, a.Name):
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return rows
}
