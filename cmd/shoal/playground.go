package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/playground"
)

func newPlaygroundCommand(c *cli) *cobra.Command {
	dir := playground.DefaultDir
	cmd := newGroupCommand("playground", "Run a whole cluster on this machine, one network namespace per node",
		newPlaygroundUpCommand(c, &dir),
		newPlaygroundLsCommand(c, &dir),
		newPlaygroundEnvCommand(c, &dir),
		newPlaygroundNodeCommand(c, &dir, "kill", "Kill a node's daemon with SIGKILL, as a crash would", playground.Kill),
		newPlaygroundNodeCommand(c, &dir, "stop", "Stop a node's daemon with SIGTERM", playground.Stop),
		newPlaygroundNodeCommand(c, &dir, "start", "Start a stopped or killed node's daemon again", playground.Start),
		newPlaygroundNodeCommand(c, &dir, "partition", "Cut a node off the LAN; it keeps running",
			func(_ *playground.State, n *playground.Node) error { return playground.Partition(n) }),
		newPlaygroundNodeCommand(c, &dir, "heal", "Plug a partitioned node back into the LAN",
			func(_ *playground.State, n *playground.Node) error { return playground.Heal(n) }),
		newPlaygroundDownCommand(c, &dir),
	)
	cmd.PersistentFlags().StringVar(&dir, "dir", dir, "Directory of the playground's state, data and logs")
	return cmd
}

func newPlaygroundUpCommand(c *cli, dir *string) *cobra.Command {
	o := playground.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "up [OPTIONS]",
		Short: "Start a playground: containerd, a registry with nginx, and the nodes in a swarm",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			o.Dir, o.Bin, o.Log = *dir, bin, c.err
			start := time.Now()
			s, err := playground.Up(cmd.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.err, "playground: up in %s\n\n", time.Since(start).Round(100*time.Millisecond))
			if err := playground.List(cmd.Context(), c.out, s); err != nil {
				return err
			}
			first, pg := s.Nodes[0], "shoal playground"+playground.DirFlag(s.Dir)
			if o.NoSwarm {
				fmt.Fprintf(c.out, `
The daemons run, in no swarm yet. Make one, as in Docker's swarm tutorial:
  eval $(%[4]s env %[1]s)
  shoal swarm init --advertise-addr %[2]s
then join the others with the command it prints, on each node:
  shoal -H %[3]s swarm join --token ... %[2]s:2377
Remove:    %[4]s down
`, first.Name, first.IP, s.Socket(s.Nodes[len(s.Nodes)-1]), pg)
				return nil
			}
			fmt.Fprintf(c.out, `
Point the CLI at a node (managers take cluster commands):
  eval $(%[4]s env %[1]s)        or: shoal -H %[2]s node ls
Dashboard: %[3]s (every node serves one)
Try:       shoal service create --name nginx --replicas 8 nginx
           %[4]s kill %[1]s       then: shoal raft status, shoal events
Remove:    %[4]s down
`, first.Name, s.Socket(first), first.Dashboard(), pg)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Managers, "managers", o.Managers, "Number of managers")
	f.IntVar(&o.Workers, "workers", o.Workers, "Number of workers")
	f.BoolVar(&o.NoSwarm, "no-swarm", false, "Start the daemons but leave swarm init and join to you")
	f.StringVar(&o.Containerd, "containerd", o.Containerd, `containerd socket to share if it answers, or "private" to always start the playground's own`)
	return cmd
}

func newPlaygroundLsCommand(c *cli, dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "ls",
		Short: "List the playground's nodes: daemon, network, Raft state, dashboard",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := playground.Load(*dir)
			if err != nil {
				return err
			}
			return playground.List(cmd.Context(), c.out, s)
		},
	}
}

func newPlaygroundEnvCommand(c *cli, dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "env NODE",
		Short: "Print the command that points the CLI at a node: eval $(shoal playground env node-02)",
		Args:  exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			s, n, err := loadNode(*dir, args[0])
			if err != nil {
				return err
			}
			fmt.Fprint(c.out, playground.Env(s, n))
			return nil
		},
	}
}

// newPlaygroundNodeCommand is one of the commands that do something to a
// node: kill, stop, start, partition, heal.
func newPlaygroundNodeCommand(c *cli, dir *string, verb, short string, do func(*playground.State, *playground.Node) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " NODE",
		Short: short,
		Args:  exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			s, n, err := loadNode(*dir, args[0])
			if err != nil {
				return err
			}
			if err := do(s, n); err != nil {
				return err
			}
			fmt.Fprintln(c.out, n.Name)
			return nil
		},
	}
}

func newPlaygroundDownCommand(c *cli, dir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove the playground: daemons, containers, images, namespaces and its directory",
		Args:  noArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			return playground.Down(*dir, c.err)
		},
	}
}

func loadNode(dir, name string) (*playground.State, *playground.Node, error) {
	s, err := playground.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	n, err := s.Node(name)
	return s, n, err
}
