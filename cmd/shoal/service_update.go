package main

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/api"
)

// updateFlags are the flags of `service update`: each one changes the spec
// only when given.
type updateFlags struct {
	image        string
	replicas     uint64
	args         shellCommand
	entrypoint   shellCommand
	envAdd       envList
	envRm        []string
	labelAdd     labelMap
	labelRm      []string
	containerAdd labelMap
	containerRm  []string
	publishAdd   portList
	publishRm    []string
	restart      restartOptions
	stopGrace    duration
	update       updateOptions
	force        bool
	rollback     bool
	wait         waitOptions
}

func newServiceUpdateCommand(c *cli) *cobra.Command {
	o := updateFlags{labelAdd: labelMap{}, containerAdd: labelMap{}, update: defaultUpdateOptions()}
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] SERVICE",
		Short: "Update a service",
		Long: "Update a service. A change to what the tasks run (image, command, environment,\n" +
			"ports, ...) replaces them in a rolling update, --update-parallelism at a time;\n" +
			"run it without changes to resume an update that paused after a failure.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.updateService(cmd.Context(), args[0], o.wait, func(svc *api.Service) (*api.UpdateServiceRequest, error) {
				req := &api.UpdateServiceRequest{Ref: svc.GetId(), Version: svc.GetVersion(), Rollback: o.rollback}
				if o.rollback {
					if changed := changedFlags(cmd.LocalFlags(), "rollback", "detach", "quiet", "timeout", "verify"); len(changed) > 0 {
						return nil, fmt.Errorf("--rollback takes the previous spec as it was: leave out --%s", strings.Join(changed, ", --"))
					}
					return req, nil
				}
				var err error
				req.Spec, err = o.spec(svc.GetSpec(), cmd.Flags())
				return req, err
			})
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&o.image, "image", "", "Service image tag")
	flags.Uint64Var(&o.replicas, "replicas", 0, "Number of tasks")
	flags.Var(&o.args, "args", "Service command args")
	flags.Var(&o.entrypoint, "entrypoint", "Overwrite the default ENTRYPOINT of the image")
	flags.Var(&o.envAdd, "env-add", "Add or update an environment variable")
	flags.StringArrayVar(&o.envRm, "env-rm", nil, "Remove an environment variable")
	flags.Var(o.labelAdd, "label-add", "Add or update a service label")
	flags.StringArrayVar(&o.labelRm, "label-rm", nil, "Remove a label by its key")
	flags.Var(o.containerAdd, "container-label-add", "Add or update a container label")
	flags.StringArrayVar(&o.containerRm, "container-label-rm", nil, "Remove a container label by its key")
	flags.Var(&o.publishAdd, "publish-add", "Add or update a published port (PUBLISHED:TARGET, or published=P,target=T,mode=host)")
	flags.StringArrayVar(&o.publishRm, "publish-rm", nil, "Remove a published port by its target port")
	addRestartFlags(flags, &o.restart)
	flags.Var(&o.stopGrace, "stop-grace-period", "Time to wait before force killing a container (ns|us|ms|s|m|h)")
	flags.BoolVar(&o.force, "force", false, "Replace every task even if nothing changed")
	flags.BoolVar(&o.rollback, "rollback", false, "Roll back to the previous spec")
	addUpdateFlags(flags, &o.update)
	addWaitFlags(flags, &o.wait)
	flags.BoolVarP(&o.wait.quiet, "quiet", "q", false, "Suppress progress output")
	return cmd
}

// spec is the service's spec with the given flags applied.
func (o *updateFlags) spec(old *api.ServiceSpec, flags *pflag.FlagSet) (*api.ServiceSpec, error) {
	spec := proto.CloneOf(old)
	if spec.Container == nil {
		spec.Container = &api.ContainerSpec{}
	}
	c := spec.Container
	if flags.Changed("image") {
		if o.image == "" {
			return nil, fmt.Errorf("--image can't be empty: name the image the tasks should run")
		}
		c.Image = o.image
	}
	if flags.Changed("replicas") {
		spec.Replicas = o.replicas
	}
	if flags.Changed("args") {
		c.Args = o.args
	}
	if flags.Changed("entrypoint") {
		c.Command = o.entrypoint
	}
	c.Env = updateEnv(c.Env, o.envAdd, o.envRm)
	spec.Labels = updateLabels(spec.Labels, o.labelAdd, o.labelRm)
	c.Labels = updateLabels(c.Labels, o.containerAdd, o.containerRm)
	ports, err := updatePorts(c.Ports, o.publishAdd, o.publishRm)
	if err != nil {
		return nil, err
	}
	c.Ports = ports
	if spec.Restart == nil {
		spec.Restart = &api.RestartPolicy{DelayNs: int64(defaultRestartDelay)}
	}
	o.restart.apply(spec.Restart, flags, false)
	if flags.Changed("stop-grace-period") {
		c.StopGracePeriodNs = int64(o.stopGrace)
	}
	if spec.Update == nil {
		spec.Update = &api.UpdateConfig{}
		defaults := defaultUpdateOptions()
		defaults.apply(spec.Update, flags, true)
	}
	o.update.apply(spec.Update, flags, false)
	if o.force {
		c.ForceUpdate++
	}
	return spec, nil
}

// updateEnv removes the variables named in rm, then sets those in add,
// replacing a variable of the same name where it was.
func updateEnv(env, add, rm []string) []string {
	key := func(kv string) string { k, _, _ := strings.Cut(kv, "="); return k }
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return slices.Contains(rm, key(kv)) })
	for _, kv := range add {
		if i := slices.IndexFunc(out, func(e string) bool { return key(e) == key(kv) }); i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func updateLabels(labels map[string]string, add map[string]string, rm []string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if !slices.Contains(rm, k) {
			out[k] = v
		}
	}
	for k, v := range add {
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// updatePorts removes the ports whose target is named in rm (PORT,
// PORT/PROTOCOL, or the long form's target=PORT), then adds those in add,
// replacing a port published on the same node port.
func updatePorts(ports []*api.PortConfig, add []*api.PortConfig, rm []string) ([]*api.PortConfig, error) {
	out := slices.Clone(ports)
	for _, r := range rm {
		target, proto, err := parsePortRef(r)
		if err != nil {
			return nil, err
		}
		n := len(out)
		out = slices.DeleteFunc(out, func(p *api.PortConfig) bool {
			return p.GetTarget() == target && (proto == "" || strings.EqualFold(p.GetProtocol(), proto))
		})
		if len(out) == n {
			return nil, fmt.Errorf("--publish-rm %s: the service publishes no target port %d; see 'shoal service inspect'", r, target)
		}
	}
	for _, a := range add {
		out = slices.DeleteFunc(out, func(p *api.PortConfig) bool {
			return p.GetPublished() == a.GetPublished() && strings.EqualFold(cmp.Or(p.GetProtocol(), "tcp"), cmp.Or(a.GetProtocol(), "tcp"))
		})
		out = append(out, a)
	}
	return out, nil
}

// parsePortRef reads a --publish-rm value: the target port, with or
// without a protocol.
func parsePortRef(s string) (uint32, string, error) {
	if strings.Contains(s, "=") {
		var l portList
		if err := l.Set(s); err != nil {
			return 0, "", err
		}
		return l[0].Target, l[0].Protocol, nil
	}
	port, proto, _ := strings.Cut(s, "/")
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return 0, "", fmt.Errorf("invalid --publish-rm %q: give the target port, such as 80 or 80/tcp", s)
	}
	return uint32(n), proto, nil
}

// changedFlags lists the command's own flags that were given, but for
// those named.
func changedFlags(flags *pflag.FlagSet, except ...string) []string {
	var out []string
	flags.VisitAll(func(f *pflag.Flag) {
		if f.Changed && !slices.Contains(except, f.Name) {
			out = append(out, f.Name)
		}
	})
	return out
}

func newServiceRollbackCommand(c *cli) *cobra.Command {
	var wait waitOptions
	cmd := &cobra.Command{
		Use:   "rollback [OPTIONS] SERVICE",
		Short: "Revert changes to a service's configuration",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.updateService(cmd.Context(), args[0], wait, func(svc *api.Service) (*api.UpdateServiceRequest, error) {
				return &api.UpdateServiceRequest{Ref: svc.GetId(), Version: svc.GetVersion(), Rollback: true}, nil
			})
		},
	}
	addWaitFlags(cmd.Flags(), &wait)
	cmd.Flags().BoolVarP(&wait.quiet, "quiet", "q", false, "Suppress progress output")
	return cmd
}

// updateService reads service ref, sends the update that build makes from
// it, prints ref, and shows the progress unless --detach.
func (c *cli) updateService(ctx context.Context, ref string, wait waitOptions, build func(*api.Service) (*api.UpdateServiceRequest, error)) error {
	d, err := c.connect()
	if err != nil {
		return err
	}
	defer d.Close()
	svc, err := d.Control.GetService(ctx, &api.GetServiceRequest{Ref: ref})
	if err != nil {
		return err
	}
	req, err := build(svc)
	if err != nil {
		return err
	}
	updated, err := d.Control.UpdateService(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.out, ref)
	if wait.detach {
		return nil
	}
	return c.waitForService(ctx, d, updated, wait)
}
