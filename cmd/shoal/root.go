// Command shoal is both halves of shoal: `shoal daemon` runs a node, and
// every other subcommand is a thin client of that daemon's control socket,
// shaped like the Docker CLI's swarm commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

const (
	defaultHost = "unix:///run/shoal/shoal.sock"
	hostEnv     = "SHOAL_HOST"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one shoal command line and returns the process exit code.
// Errors are printed to stderr, as the Docker CLI does.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, err)
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 1
}

// cli is what every client command shares: its output streams and the
// address of the daemon chosen with -H or SHOAL_HOST.
type cli struct {
	out  io.Writer
	err  io.Writer
	host string
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	c := &cli{out: stdout, err: stderr}
	root := &cobra.Command{
		Use:           "shoal [OPTIONS] COMMAND",
		Short:         "A small re-implementation of Docker Swarm mode",
		Args:          noArgs,
		RunE:          showHelp,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(flagError)

	host := os.Getenv(hostEnv)
	if host == "" {
		host = defaultHost
	}
	root.PersistentFlags().StringVarP(&c.host, "host", "H", host,
		"Daemon socket to connect to (env "+hostEnv+")")

	root.AddCommand(
		newSwarmCommand(c),
		newNodeCommand(c),
		newServiceCommand(c),
		newInfoCommand(c),
		newRaftCommand(c),
		newEventsCommand(c),
		newVersionCommand(c),
		newDaemonCommand(),
		newPlaygroundCommand(c),
	)
	disableFlagsInUseLine(root)
	return root
}

// disableFlagsInUseLine keeps cobra from appending "[flags]" to usage lines;
// every Use already says [OPTIONS] where there are options, as Docker's do.
func disableFlagsInUseLine(cmd *cobra.Command) {
	cmd.DisableFlagsInUseLine = true
	for _, sub := range cmd.Commands() {
		disableFlagsInUseLine(sub)
	}
}

// newGroupCommand returns a command that only holds subcommands, such as
// `shoal node`; run alone it prints its help.
func newGroupCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: noArgs, RunE: showHelp}
	cmd.AddCommand(subs...)
	return cmd
}

func showHelp(cmd *cobra.Command, _ []string) error {
	cmd.SetOut(cmd.ErrOrStderr())
	return cmd.Help()
}

// ---------------------------------------------------------------------------
// Errors and exit codes

// statusError is an error that ends the process with a given exit code.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// flagError reports a bad flag the way Docker does, with exit code 125.
func flagError(cmd *cobra.Command, err error) error {
	return &statusError{
		code: 125,
		msg:  fmt.Sprintf("%s\nSee '%s --help'.", err, cmd.CommandPath()),
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("%s: unknown command: %s %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), args[0], cmd.UseLine(), cmd.CommandPath())
	}
	return fmt.Errorf("%s: '%s' accepts no arguments\n\nUsage:  %s\n\nRun '%s --help' for more information",
		cmd.Root().Name(), cmd.CommandPath(), cmd.UseLine(), cmd.CommandPath())
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires %d %s\n\nUsage:  %s\n\nRun '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), n, plural("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return fmt.Errorf("%s: '%s' requires at least %d %s\n\nUsage:  %s\n\nSee '%s --help' for more information",
			cmd.Root().Name(), cmd.CommandPath(), n, plural("argument", n), cmd.UseLine(), cmd.CommandPath())
	}
}

func plural(word string, n int) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// daemonError is an error returned by the daemon. It prints as Docker's
// "Error response from daemon: ..." and keeps the gRPC status, so callers can
// still test status.Code(err).
type daemonError struct {
	st *status.Status
}

func (e *daemonError) Error() string {
	return "Error response from daemon: " + e.st.Message()
}

func (e *daemonError) GRPCStatus() *status.Status { return e.st }

// connectError means the daemon's socket could not be reached at all.
type connectError struct {
	host string
	err  error
}

func (e *connectError) Error() string {
	return fmt.Sprintf("Cannot connect to the shoal daemon at %s: is the daemon running?", e.host)
}

func (e *connectError) Unwrap() error { return e.err }

// ---------------------------------------------------------------------------
// The daemon connection

// daemonConn is a gRPC connection to the local daemon's control socket.
type daemonConn struct {
	cc      *grpc.ClientConn
	Swarm   api.SwarmClient
	Control api.ControlClient
}

func (d *daemonConn) Close() error { return d.cc.Close() }

// connect opens a connection to the daemon named by -H. Nothing is sent
// until the first call; every call's error comes back as a *daemonError or,
// when the socket could not be reached, a *connectError.
func (c *cli) connect() (*daemonConn, error) {
	path, err := socketPath(c.host)
	if err != nil {
		return nil, err
	}
	host := "unix://" + path
	dials := &dialRecord{}
	cc, err := grpc.NewClient(host,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", path)
			dials.record(err)
			return conn, err
		}),
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any,
			cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return translateError(host, dials, invoker(ctx, method, req, reply, cc, opts...))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", host, err)
	}
	return &daemonConn{cc: cc, Swarm: api.NewSwarmClient(cc), Control: api.NewControlClient(cc)}, nil
}

// socketPath accepts unix:///path (or a bare absolute path) and returns the
// socket's path.
func socketPath(host string) (string, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok && strings.HasPrefix(host, "/") {
		path, ok = host, true
	}
	if !ok || path == "" {
		return "", fmt.Errorf("invalid host %q: shoal talks to its daemon over a unix socket, use -H unix:///path/to/shoal.sock", host)
	}
	return path, nil
}

// dialRecord remembers whether the socket was ever reached, to tell "the
// daemon is not there" apart from a daemon that answered Unavailable.
type dialRecord struct {
	mu        sync.Mutex
	connected bool
	lastErr   error
}

func (r *dialRecord) record(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.connected = true
	} else {
		r.lastErr = err
	}
}

func (r *dialRecord) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.connected {
		return nil
	}
	return r.lastErr
}

func translateError(host string, dials *dialRecord, err error) error {
	if err == nil {
		return nil
	}
	st, _ := status.FromError(err)
	if st.Code() == codes.Unavailable {
		if dialErr := dials.failed(); dialErr != nil {
			return &connectError{host: host, err: dialErr}
		}
	}
	return &daemonError{st: st}
}
