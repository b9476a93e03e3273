package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/api"
)

func newServiceInspectCommand(c *cli) *cobra.Command {
	var format string
	var pretty bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] SERVICE [SERVICE...]",
		Short: "Display detailed information on one or more services",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			if pretty && format != "" {
				return errors.New("--format is incompatible with human friendly format")
			}
			d, err := c.connect()
			if err != nil {
				return err
			}
			defer d.Close()
			var services []serviceJSON
			var errs []error
			for _, ref := range refs {
				svc, err := d.Control.GetService(cmd.Context(), &api.GetServiceRequest{Ref: ref})
				if status.Code(err) == codes.NotFound {
					err = errors.New("Error: no such service: " + ref)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				services = append(services, newServiceJSON(svc))
			}
			if pretty {
				for _, s := range services {
					writeServicePretty(c.out, s)
				}
			} else if err := writeInspect(c.out, format, services); err != nil {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	cmd.Flags().BoolVar(&pretty, "pretty", false, "Print the information in a human friendly format")
	return cmd
}

// serviceJSON is a service in the shape of Docker's API (`docker service
// inspect`), so that templates such as {{.Spec.Mode.Replicated.Replicas}}
// work as they do with Docker.
type serviceJSON struct {
	ID           string
	Version      objectVersion
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Spec         serviceSpecJSON
	UpdateStatus *updateStatusJSON `json:",omitempty"`
}

type updateStatusJSON struct {
	State       string     // updating, paused, completed
	StartedAt   *time.Time `json:",omitempty"`
	CompletedAt *time.Time `json:",omitempty"`
	Message     string
}

type updateConfigJSON struct {
	Parallelism   uint64
	Delay         time.Duration
	FailureAction string // pause, continue
	Monitor       time.Duration
	Order         string
}

type serviceSpecJSON struct {
	Name         string
	Labels       map[string]string
	TaskTemplate taskTemplateJSON
	Mode         serviceModeJSON
	UpdateConfig *updateConfigJSON `json:",omitempty"`
	EndpointSpec *endpointSpecJSON `json:",omitempty"`
}

// endpointSpecJSON holds the published ports, where Docker keeps them.
type endpointSpecJSON struct {
	Ports []portJSON
}

type portJSON struct {
	Protocol      string
	TargetPort    uint32
	PublishedPort uint32
	PublishMode   string // ingress, host
}

type taskTemplateJSON struct {
	ContainerSpec containerSpecJSON
	RestartPolicy restartPolicyJSON
}

type containerSpecJSON struct {
	Image           string
	Labels          map[string]string `json:",omitempty"`
	Command         []string          `json:",omitempty"`
	Args            []string          `json:",omitempty"`
	Env             []string          `json:",omitempty"`
	StopGracePeriod time.Duration
}

type restartPolicyJSON struct {
	Condition   string // any, on-failure, none
	Delay       time.Duration
	MaxAttempts uint64
	Window      time.Duration `json:",omitempty"`
}

type serviceModeJSON struct {
	Replicated replicatedJSON
}

type replicatedJSON struct {
	Replicas uint64
}

func newServiceJSON(s *api.Service) serviceJSON {
	spec := s.GetSpec()
	labels := spec.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	c := spec.GetContainer()
	r := spec.GetRestart()
	var update *updateConfigJSON
	if u := spec.GetUpdate(); u != nil {
		update = &updateConfigJSON{Parallelism: u.GetParallelism(), Delay: time.Duration(u.GetDelayNs()),
			FailureAction: u.GetFailureAction().Name(), Monitor: time.Duration(u.GetMonitorNs()), Order: "stop-first"}
	}
	var status *updateStatusJSON
	if st := s.GetUpdateStatus(); st.GetState() != api.UpdateStatus_NONE {
		status = &updateStatusJSON{State: st.GetState().Name(), Message: st.GetMessage()}
		if ns := st.GetStartedUnixNano(); ns != 0 {
			t := unixNano(ns)
			status.StartedAt = &t
		}
		if ns := st.GetCompletedUnixNano(); ns != 0 && st.GetState().Completed() {
			t := unixNano(ns)
			status.CompletedAt = &t
		}
	}
	return serviceJSON{
		UpdateStatus: status,
		ID:           s.GetId(),
		Version:      objectVersion{Index: s.GetVersion()},
		CreatedAt:    unixNano(s.GetCreatedUnixNano()),
		UpdatedAt:    unixNano(s.GetUpdatedUnixNano()),
		Spec: serviceSpecJSON{
			Name:   spec.GetName(),
			Labels: labels,
			TaskTemplate: taskTemplateJSON{
				ContainerSpec: containerSpecJSON{
					Image:           c.GetImage(),
					Labels:          c.GetLabels(),
					Command:         c.GetCommand(),
					Args:            c.GetArgs(),
					Env:             c.GetEnv(),
					StopGracePeriod: time.Duration(c.GetStopGracePeriodNs()),
				},
				RestartPolicy: restartPolicyJSON{
					Condition:   restartConditionName(r.GetCondition()),
					Delay:       time.Duration(r.GetDelayNs()),
					MaxAttempts: r.GetMaxAttempts(),
					Window:      time.Duration(r.GetWindowNs()),
				},
			},
			Mode:         serviceModeJSON{Replicated: replicatedJSON{Replicas: spec.GetReplicas()}},
			UpdateConfig: update,
			EndpointSpec: endpointSpec(c.GetPorts()),
		},
	}
}

func endpointSpec(ports []*api.PortConfig) *endpointSpecJSON {
	if len(ports) == 0 {
		return nil
	}
	e := &endpointSpecJSON{}
	for _, p := range ports {
		e.Ports = append(e.Ports, portJSON{Protocol: cmp.Or(p.GetProtocol(), "tcp"), TargetPort: p.GetTarget(),
			PublishedPort: p.GetPublished(), PublishMode: strings.ToLower(p.GetMode().String())})
	}
	return e
}

// writeServicePretty prints a service as `docker service inspect --pretty`
// does, blank lines around it included, leaving out the sections shoal has
// no settings for. Command (--entrypoint) is shoal's addition.
func writeServicePretty(w io.Writer, s serviceJSON) {
	fmt.Fprintln(w)
	fmt.Fprintf(w, "ID:\t\t%s\n", s.ID)
	fmt.Fprintf(w, "Name:\t\t%s\n", s.Spec.Name)
	if len(s.Spec.Labels) > 0 {
		fmt.Fprintln(w, "Labels:")
		for _, k := range slices.Sorted(maps.Keys(s.Spec.Labels)) {
			if v := s.Spec.Labels[k]; v != "" {
				fmt.Fprintf(w, " %s=%s\n", k, v)
			} else {
				fmt.Fprintf(w, " %s\n", k)
			}
		}
	}
	fmt.Fprintln(w, "Service Mode:\tReplicated")
	fmt.Fprintf(w, " Replicas:\t%d\n", s.Spec.Mode.Replicated.Replicas)
	if st := s.UpdateStatus; st != nil {
		ago := func(t time.Time) string { return strings.ToLower(humanDuration(timeNow().Sub(t))) + " ago" }
		fmt.Fprintln(w, "UpdateStatus:")
		fmt.Fprintf(w, " State:\t\t%s\n", st.State)
		if st.StartedAt != nil {
			fmt.Fprintf(w, " Started:\t%s\n", ago(*st.StartedAt))
		}
		if st.CompletedAt != nil {
			fmt.Fprintf(w, " Completed:\t%s\n", ago(*st.CompletedAt))
		}
		fmt.Fprintf(w, " Message:\t%s\n", st.Message)
	}
	if u := s.Spec.UpdateConfig; u != nil {
		fmt.Fprintln(w, "UpdateConfig:")
		fmt.Fprintf(w, " Parallelism:\t%d\n", u.Parallelism)
		if u.Delay > 0 {
			fmt.Fprintf(w, " Delay:\t\t%s\n", u.Delay)
		}
		fmt.Fprintf(w, " On failure:\t%s\n", u.FailureAction)
		if u.Monitor > 0 {
			fmt.Fprintf(w, " Monitoring Period: %s\n", u.Monitor)
		}
		fmt.Fprintf(w, " Update order:      %s\n", u.Order)
	}
	cs := s.Spec.TaskTemplate.ContainerSpec
	fmt.Fprintln(w, "ContainerSpec:")
	fmt.Fprintf(w, " Image:\t\t%s\n", cs.Image)
	if len(cs.Command) > 0 {
		fmt.Fprintf(w, " Command:\t%s\n", strings.Join(cs.Command, " "))
	}
	// Docker ends every argument and variable with a space.
	if len(cs.Args) > 0 {
		fmt.Fprintf(w, " Args:\t\t%s \n", strings.Join(cs.Args, " "))
	}
	if len(cs.Env) > 0 {
		fmt.Fprintf(w, " Env:\t\t%s \n", strings.Join(cs.Env, " "))
	}
	if s.Spec.EndpointSpec != nil {
		fmt.Fprintln(w, "Ports:")
		for _, p := range s.Spec.EndpointSpec.Ports {
			fmt.Fprintf(w, " PublishedPort = %d\n  Protocol = %s\n  TargetPort = %d\n  PublishMode = %s\n",
				p.PublishedPort, p.Protocol, p.TargetPort, p.PublishMode)
		}
	}
	fmt.Fprintln(w)
}
