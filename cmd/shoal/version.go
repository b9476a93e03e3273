package main

import (
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/api"
)

// version is shoal's version, shown by `shoal version` and reported by the
// daemon as its engine version.
var version = "0.1.0-dev"

func newVersionCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the shoal version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(c.out, 20, 1, 1, ' ', 0)
			fmt.Fprintln(tw, "Client:")
			fmt.Fprintf(tw, " Version:\t%s\n", version)
			fmt.Fprintf(tw, " Go version:\t%s\n", runtime.Version())
			fmt.Fprintf(tw, " OS/Arch:\t%s/%s\n", runtime.GOOS, runtime.GOARCH)
			// Like Docker, print the client's part even when the daemon
			// cannot be reached, then report that.
			if err := tw.Flush(); err != nil {
				return err
			}

			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			info, err := d.Swarm.Info(cmd.Context(), &api.InfoRequest{})
			if err != nil {
				return err
			}
			fmt.Fprintln(tw)
			fmt.Fprintln(tw, "Server:")
			fmt.Fprintln(tw, " Engine:")
			fmt.Fprintf(tw, "  Version:\t%s\n", info.GetEngineVersion())
			return tw.Flush()
		},
	}
}
