package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

const (
	defaultListenAddr = "0.0.0.0:2377"
	defaultSwarmPort  = "2377"
)

func newSwarmCommand(c *cli) *cobra.Command {
	return newGroupCommand("swarm", "Manage Swarm",
		newSwarmInitCommand(c),
		newSwarmJoinCommand(c),
		newSwarmJoinTokenCommand(c),
		newSwarmLeaveCommand(c),
	)
}

func newSwarmInitCommand(c *cli) *cobra.Command {
	var (
		listenAddr, advertiseAddr string
		certExpiry                time.Duration
		forceNewCluster           bool
		addrPool                  string
		addrPoolMask              uint32
	)
	cmd := &cobra.Command{
		Use:   "init [OPTIONS]",
		Short: "Initialize a swarm",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen, err := withDefaultPort(listenAddr)
			if err != nil {
				return err
			}
			req := &api.InitRequest{
				ListenAddr:                listen,
				AdvertiseAddr:             advertiseAddr,
				ForceNewCluster:           forceNewCluster,
				DefaultAddrPool:           addrPool,
				DefaultAddrPoolMaskLength: addrPoolMask,
			}
			if cmd.Flags().Changed("cert-expiry") {
				req.CertExpiryNs = int64(certExpiry)
			}
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			resp, err := d.Swarm.Init(cmd.Context(), req)
			if err != nil {
				if msg := status.Convert(err).Message(); strings.Contains(msg, "could not choose an IP address to advertise") ||
					strings.Contains(msg, "could not find the system's IP address") {
					return fmt.Errorf("%w - specify one with --advertise-addr", err)
				}
				return err
			}
			for _, p := range resp.GetRemovedManagers() {
				fmt.Fprintf(c.out, "Removed manager %s (%s) from the swarm's Raft cluster; it is a worker now.\n", p.GetNodeId(), p.GetAddr())
			}
			fmt.Fprintf(c.out, "Swarm initialized: current node (%s) is now a manager.\n\n", resp.GetNodeId())
			writeJoinCommand(c.out, api.NodeRole_WORKER, resp.GetWorkerToken(), resp.GetAdvertiseAddr())
			fmt.Fprint(c.out, "To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions.\n\n")
			return nil
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&listenAddr, "listen-addr", defaultListenAddr, `Listen address (format: "<ip>[:port]")`)
	flags.StringVar(&advertiseAddr, "advertise-addr", "", `Advertised address (format: "<ip>[:port]")`)
	flags.DurationVar(&certExpiry, "cert-expiry", 90*24*time.Hour, "Validity period for node certificates (ns|us|ms|s|m|h)")
	flags.BoolVar(&forceNewCluster, "force-new-cluster", false, "Force create a new cluster from current state")
	flags.StringVar(&addrPool, "default-addr-pool", "", "Address pool the nodes' task subnets are cut from (default 10.0.0.0/8)")
	flags.Uint32Var(&addrPoolMask, "default-addr-pool-mask-length", 0, "Prefix length of each node's task subnet (default 24)")
	return cmd
}

func newSwarmJoinCommand(c *cli) *cobra.Command {
	var listenAddr, advertiseAddr, token string
	cmd := &cobra.Command{
		Use:   "join [OPTIONS] HOST:PORT",
		Short: "Join a swarm as a node and/or manager",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			listen, err := withDefaultPort(listenAddr)
			if err != nil {
				return err
			}
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			resp, err := d.Swarm.Join(cmd.Context(), &api.JoinRequest{
				RemoteAddr:    args[0],
				Token:         token,
				ListenAddr:    listen,
				AdvertiseAddr: advertiseAddr,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "This node joined a swarm as a %s.\n", resp.GetRole().Name())
			return nil
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&listenAddr, "listen-addr", defaultListenAddr, `Listen address (format: "<ip>[:port]")`)
	flags.StringVar(&advertiseAddr, "advertise-addr", "", `Advertised address (format: "<ip>[:port]")`)
	flags.StringVar(&token, "token", "", "Token for entry into the swarm")
	_ = cmd.MarkFlagRequired("token")
	return cmd
}

func newSwarmJoinTokenCommand(c *cli) *cobra.Command {
	var quiet, rotate bool
	cmd := &cobra.Command{
		Use:   "join-token [OPTIONS] (worker|manager)",
		Short: "Manage join tokens",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			role, err := parseRole(args[0])
			if err != nil {
				return err
			}
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			req := &api.GetJoinTokenRequest{Role: role}
			var tok *api.JoinToken
			if rotate {
				tok, err = d.Control.RotateJoinToken(cmd.Context(), req)
			} else {
				tok, err = d.Control.GetJoinToken(cmd.Context(), req)
			}
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(c.out, tok.GetToken())
				return nil
			}
			if rotate {
				fmt.Fprintf(c.out, "Successfully rotated %s join token.\n\n", role.Name())
			}
			var addr string
			if addrs := tok.GetManagerAddrs(); len(addrs) > 0 {
				addr = addrs[0]
			}
			writeJoinCommand(c.out, role, tok.GetToken(), addr)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display token")
	cmd.Flags().BoolVar(&rotate, "rotate", false, "Rotate join token")
	return cmd
}

// writeJoinCommand prints the command that joins a node with the given role.
func writeJoinCommand(w io.Writer, role api.NodeRole, token, addr string) {
	join := "shoal swarm join --token " + token
	if addr != "" {
		join += " " + addr
	}
	fmt.Fprintf(w, "To add a %s to this swarm, run the following command:\n\n    %s\n\n", role.Name(), join)
}

func newSwarmLeaveCommand(c *cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "leave [OPTIONS]",
		Short: "Leave the swarm",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			if _, err := d.Swarm.Leave(cmd.Context(), &api.LeaveRequest{Force: force}); err != nil {
				return err
			}
			fmt.Fprintln(c.out, "Node left the swarm.")
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force this node to leave the swarm, ignoring warnings")
	return cmd
}

// withDefaultPort completes a listen address as Docker does: the port
// defaults to 2377 and an empty host to 0.0.0.0.
func withDefaultPort(addr string) (string, error) {
	if ip := net.ParseIP(strings.Trim(addr, "[]")); ip != nil {
		return net.JoinHostPort(ip.String(), defaultSwarmPort), nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var addrErr *net.AddrError
		if !errors.As(err, &addrErr) || addrErr.Err != "missing port in address" {
			return "", fmt.Errorf("invalid listen address %q: %v", addr, err)
		}
		host, port = addr, defaultSwarmPort
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, port), nil
}
