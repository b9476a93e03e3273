package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/shoal-dev/shoal/api"
)

const (
	defaultRestartDelay    = 5 * time.Second
	defaultStopGracePeriod = 10 * time.Second
	defaultUpdateMonitor   = 5 * time.Second
)

func newServiceCommand(c *cli) *cobra.Command {
	return newGroupCommand("service", "Manage Swarm services",
		newServiceCreateCommand(c),
		newServiceInspectCommand(c),
		newServiceListCommand(c),
		newServicePsCommand(c),
		newServiceRemoveCommand(c),
		newServiceRollbackCommand(c),
		newServiceScaleCommand(c),
		newServiceUpdateCommand(c),
	)
}

// createOptions are the flags of `service create`.
type createOptions struct {
	name            string
	replicas        uint64
	env             envList
	labels          labelMap
	containerLabels labelMap
	entrypoint      shellCommand
	restart         restartOptions
	stopGrace       duration
	publish         portList
	update          updateOptions
	wait            waitOptions
}

func newServiceCreateCommand(c *cli) *cobra.Command {
	opts := createOptions{
		replicas:        1,
		labels:          labelMap{},
		containerLabels: labelMap{},
		restart:         restartOptions{delay: duration(defaultRestartDelay)},
		stopGrace:       duration(defaultStopGracePeriod),
		update:          defaultUpdateOptions(),
	}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new service",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			spec := opts.spec(args)
			spec.Update = &api.UpdateConfig{}
			opts.update.apply(spec.Update, cmd.Flags(), true)
			svc, err := d.Control.CreateService(cmd.Context(), &api.CreateServiceRequest{Spec: spec})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, svc.GetId())
			if opts.wait.detach {
				return nil
			}
			return c.waitForService(cmd.Context(), d, svc, opts.wait)
		},
	}
	flags := cmd.Flags()
	// Everything after IMAGE is the container's command line, flags included.
	flags.SetInterspersed(false)
	flags.StringVar(&opts.name, "name", "", "Service name")
	flags.Uint64Var(&opts.replicas, "replicas", opts.replicas, "Number of tasks")
	flags.VarP(&opts.env, "env", "e", "Set environment variables")
	flags.VarP(opts.labels, "label", "l", "Service labels")
	flags.Var(opts.containerLabels, "container-label", "Container labels")
	flags.Var(&opts.entrypoint, "entrypoint", "Overwrite the default ENTRYPOINT of the image")
	addRestartFlags(flags, &opts.restart)
	flags.Var(&opts.stopGrace, "stop-grace-period", "Time to wait before force killing a container (ns|us|ms|s|m|h)")
	flags.VarP(&opts.publish, "publish", "p", "Publish a port: PUBLISHED:TARGET on every node (routing mesh), or published=P,target=T,mode=host on the task's node")
	addUpdateFlags(flags, &opts.update)
	addWaitFlags(flags, &opts.wait)
	flags.BoolVarP(&opts.wait.quiet, "quiet", "q", false, "Suppress progress output")
	return cmd
}

// spec builds the service spec from the flags and IMAGE [COMMAND] [ARG...].
// As in Docker, COMMAND and ARGs replace the image's CMD and --entrypoint
// its ENTRYPOINT. Every default is filled in here, so the daemon can take
// the spec as it is.
func (o *createOptions) spec(args []string) *api.ServiceSpec {
	container := &api.ContainerSpec{
		Image:             args[0],
		Command:           o.entrypoint,
		Args:              args[1:],
		Env:               o.env,
		StopGracePeriodNs: int64(o.stopGrace),
		Ports:             o.publish,
	}
	if len(container.Args) == 0 {
		container.Args = nil
	}
	if len(o.containerLabels) > 0 {
		container.Labels = o.containerLabels
	}
	spec := &api.ServiceSpec{
		Name:      o.name,
		Container: container,
		Replicas:  o.replicas,
		Restart:   &api.RestartPolicy{},
	}
	o.restart.apply(spec.Restart, nil, true)
	if len(o.labels) > 0 {
		spec.Labels = o.labels
	}
	return spec
}

// addWaitFlags adds the flags of the commands that wait for a service to
// converge (create, scale).
func addWaitFlags(flags *pflag.FlagSet, o *waitOptions) {
	flags.BoolVarP(&o.detach, "detach", "d", false, "Exit immediately instead of waiting for the service to converge")
	flags.DurationVar(&o.timeout, "timeout", 0, "Give up waiting for the service to converge after this long (0: wait until it converges or ^C)")
	flags.DurationVar(&o.verify, "verify", 0, "After converging, check this long that the tasks stay running (Docker waits 5s)")
}

func newServiceScaleCommand(c *cli) *cobra.Command {
	var wait waitOptions
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS [SERVICE=REPLICAS...]",
		Short: "Scale one or multiple replicated services",
		Args:  scaleArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			var errs []error
			var scaled []*api.Service
			for _, arg := range args {
				ref, value, _ := strings.Cut(arg, "=")
				replicas, err := strconv.ParseUint(value, 10, 64)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: invalid replicas value %s: %w", ref, value, err))
					continue
				}
				svc, err := d.Control.UpdateService(cmd.Context(), &api.UpdateServiceRequest{Ref: ref, Replicas: &replicas})
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", ref, err))
					continue
				}
				fmt.Fprintf(c.out, "%s scaled to %d\n", ref, replicas)
				scaled = append(scaled, svc)
			}
			if !wait.detach {
				for _, svc := range scaled {
					if err := c.waitForService(cmd.Context(), d, svc, wait); err != nil {
						errs = append(errs, err) // it names the service
					}
					if cmd.Context().Err() != nil {
						break
					}
				}
			}
			return errors.Join(errs...)
		},
	}
	addWaitFlags(cmd.Flags(), &wait)
	return cmd
}

// scaleArgs checks every SERVICE=REPLICAS before anything is scaled, with
// Docker's message for a malformed one.
func scaleArgs(cmd *cobra.Command, args []string) error {
	if err := minArgs(1)(cmd, args); err != nil {
		return err
	}
	for _, arg := range args {
		if k, v, ok := strings.Cut(arg, "="); !ok || k == "" || v == "" {
			return fmt.Errorf("invalid scale specifier '%s'.\nSee '%s --help'.\n\nUsage:  %s\n\n%s",
				arg, cmd.CommandPath(), cmd.UseLine(), cmd.Short)
		}
	}
	return nil
}

func newServiceRemoveCommand(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:     "rm SERVICE [SERVICE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more services",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			var errs []error
			for _, ref := range refs {
				if _, err := d.Control.RemoveService(cmd.Context(), &api.RemoveServiceRequest{Ref: ref}); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(c.out, ref)
			}
			return errors.Join(errs...)
		},
	}
}
