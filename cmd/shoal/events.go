package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/api"
)

var eventTypes = []string{"node", "service", "task", "raft"}

func newEventsCommand(c *cli) *cobra.Command {
	var (
		since   time.Duration
		filters []string
		format  string
	)
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Stream cluster events: elections, nodes up and down, services and tasks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &api.EventsRequest{}
			if since > 0 {
				req.SinceUnixNano = timeNow().Add(-since).UnixNano()
			}
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				if !ok || k != "type" || !slices.Contains(eventTypes, v) {
					return fmt.Errorf("invalid filter %q: use type=node, type=service, type=task or type=raft", f)
				}
				req.Types = append(req.Types, v)
			}
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			stream, err := d.Control.Events(cmd.Context(), req)
			if err != nil {
				return err
			}
			for {
				e, err := stream.Recv()
				if errors.Is(err, io.EOF) || cmd.Context().Err() != nil {
					return nil
				}
				if err != nil {
					return err
				}
				if err := writeEvent(c.out, format, e); err != nil {
					return err
				}
			}
		},
	}
	f := cmd.Flags()
	f.DurationVar(&since, "since", 0, "Show the events of this long ago first (e.g. 10m)")
	f.StringSliceVarP(&filters, "filter", "f", nil, "Only events of a type: type=node|service|task|raft (repeatable)")
	f.StringVar(&format, "format", "", `Format: "json" for one JSON object per line, or a Go template`)
	return cmd
}

// eventRow is one event, with the names --format templates use.
type eventRow struct {
	Time       string
	Type       string
	Action     string
	ID         string
	Attributes map[string]string
}

func (r eventRow) MarshalJSON() ([]byte, error) { return marshalRow(r) }

// writeEvent prints one event as Docker does:
// 2026-11-25T14:20:01.123456789Z node update 8ugq0w... (name=node-02, state.new=down)
func writeEvent(w io.Writer, format string, e *api.Event) error {
	row := eventRow{Time: time.Unix(0, e.GetUnixNano()).UTC().Format(time.RFC3339Nano), Type: e.GetType(),
		Action: e.GetAction(), ID: e.GetId(), Attributes: e.GetAttributes()}
	if format == "" {
		keys := make([]string, 0, len(row.Attributes))
		for k := range row.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		attrs := make([]string, 0, len(keys))
		for _, k := range keys {
			attrs = append(attrs, k+"="+row.Attributes[k])
		}
		_, err := fmt.Fprintf(w, "%s %s %s %s (%s)\n", row.Time, row.Type, row.Action, row.ID, strings.Join(attrs, ", "))
		return err
	}
	return writeTemplate(w, format, row) // "json" too
}
