package main

// Flag values of the service commands. Each one checks its input when the
// flag is parsed, so a bad value is a usage error (exit 125) before anything
// reaches the daemon, as with Docker's typed options.

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoal-dev/shoal/api"
)

// envList collects --env values: KEY=VALUE, or a bare KEY that takes its
// value from the CLI's own environment when set there (as Docker does).
type envList []string

func (l *envList) String() string { return strings.Join(*l, ",") }
func (l *envList) Type() string   { return "list" }

func (l *envList) Set(v string) error {
	key, _, hasValue := strings.Cut(v, "=")
	if key == "" || strings.ContainsAny(key, " \t") {
		return fmt.Errorf("invalid environment variable: %s", v)
	}
	if !hasValue {
		if value, ok := os.LookupEnv(key); ok {
			v = key + "=" + value
		}
	}
	*l = append(*l, v)
	return nil
}

// labelMap collects --label and --container-label values: KEY=VALUE, or a
// bare KEY for an empty value.
type labelMap map[string]string

func (m labelMap) String() string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		keys = append(keys, k+"="+v)
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

func (m labelMap) Type() string { return "list" }

func (m labelMap) Set(v string) error {
	key, value, _ := strings.Cut(v, "=")
	if strings.TrimSpace(key) == "" {
		return fmt.Errorf("invalid label %q: the key is empty", v)
	}
	m[key] = value
	return nil
}

// restartCondition is --restart-condition: any, on-failure or none.
type restartCondition api.RestartPolicy_Condition

func (c *restartCondition) String() string {
	return restartConditionName(api.RestartPolicy_Condition(*c))
}

func (c *restartCondition) Type() string { return "string" }

func (c *restartCondition) Set(v string) error {
	for _, cond := range []api.RestartPolicy_Condition{api.RestartPolicy_ANY, api.RestartPolicy_ON_FAILURE, api.RestartPolicy_NONE} {
		if v == restartConditionName(cond) {
			*c = restartCondition(cond)
			return nil
		}
	}
	return errors.New(`use "any", "on-failure" or "none"`)
}

// restartConditionName is Docker's API name of a restart condition.
func restartConditionName(c api.RestartPolicy_Condition) string {
	switch c {
	case api.RestartPolicy_ON_FAILURE:
		return "on-failure"
	case api.RestartPolicy_NONE:
		return "none"
	}
	return "any"
}

// duration is a time.Duration flag that refuses negative values.
type duration time.Duration

// String is "0" for zero, which flag help takes as "no default".
func (d *duration) String() string {
	if *d == 0 {
		return "0"
	}
	return time.Duration(*d).String()
}

func (d *duration) Type() string { return "duration" }

func (d *duration) Set(v string) error {
	parsed, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("use a duration such as 500ms, 5s or 2m (units ns|us|ms|s|m|h)")
	}
	if parsed < 0 {
		return errors.New("the duration must not be negative")
	}
	*d = duration(parsed)
	return nil
}

// shellCommand is --entrypoint: one string split into words the way a shell
// would split it (quotes and backslashes, no expansion), as Docker does.
type shellCommand []string

func (c *shellCommand) String() string { return strings.Join(*c, " ") }
func (c *shellCommand) Type() string   { return "command" }

func (c *shellCommand) Set(v string) error {
	words, err := splitWords(v)
	if err != nil {
		return err
	}
	*c = words
	return nil
}

// splitWords splits s at unquoted blanks. Single quotes keep everything
// literally; within double quotes a backslash escapes only " and \; outside
// quotes a backslash escapes any character.
func splitWords(s string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range s {
		switch {
		case escaped:
			if quote == '"' && r != '"' && r != '\\' {
				word.WriteRune('\\')
			}
			word.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			word.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if escaped || quote != 0 {
		return nil, errors.New("unterminated quote or escape")
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// filterValue collects --filter KEY=VALUE pairs. Values of one key are
// alternatives; different keys must all match.
type filterValue map[string][]string

func (f filterValue) String() string { return "" }
func (f filterValue) Type() string   { return "filter" }

func (f filterValue) Set(v string) error {
	key, value, ok := strings.Cut(v, "=")
	key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
	if !ok || key == "" {
		return errors.New("bad format of filter (expected name=value)")
	}
	f[key] = append(f[key], value)
	return nil
}

// portList collects --publish values, in Docker's two forms: the short
// PUBLISHED:TARGET[/PROTOCOL], and the long
// published=P,target=T[,protocol=tcp|udp][,mode=ingress|host]. The mode is
// ingress unless given, as in Docker; the daemon says what it supports.
type portList []*api.PortConfig

func (l *portList) String() string { return portsText(*l) }
func (l *portList) Type() string   { return "port" }

func (l *portList) Set(v string) error {
	p := &api.PortConfig{}
	if strings.Contains(v, "=") {
		for _, field := range strings.Split(v, ",") {
			key, val, ok := strings.Cut(field, "=")
			if !ok {
				return fmt.Errorf("invalid field %q in %q: use key=value", field, v)
			}
			var err error
			switch strings.ToLower(strings.TrimSpace(key)) {
			case "published":
				p.Published, err = parsePort(val)
			case "target":
				p.Target, err = parsePort(val)
			case "protocol":
				p.Protocol = strings.ToLower(val)
			case "mode":
				switch strings.ToLower(val) {
				case "ingress":
					p.Mode = api.PortConfig_INGRESS
				case "host":
					p.Mode = api.PortConfig_HOST
				default:
					return fmt.Errorf("invalid publish mode %q: use ingress or host", val)
				}
			default:
				return fmt.Errorf("invalid field key %q in %q: use published, target, protocol or mode", key, v)
			}
			if err != nil {
				return err
			}
		}
		if p.Target == 0 {
			return fmt.Errorf("missing target port in %q: add target=PORT", v)
		}
	} else {
		ports, proto, _ := strings.Cut(v, "/")
		published, target, ok := strings.Cut(ports, ":")
		if !ok {
			return fmt.Errorf("invalid port %q: use PUBLISHED:TARGET[/PROTOCOL], or published=P,target=T,mode=host", v)
		}
		var err error
		if p.Published, err = parsePort(published); err != nil {
			return err
		}
		if p.Target, err = parsePort(target); err != nil {
			return err
		}
		p.Protocol = strings.ToLower(proto)
	}
	*l = append(*l, p)
	return nil
}

func parsePort(s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("invalid port %q: use a number from 1 to 65535", s)
	}
	return uint32(n), nil
}

// portsText is the PORTS column: "*:8080->80/tcp", comma separated.
func portsText(ports []*api.PortConfig) string {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		out = append(out, fmt.Sprintf("*:%d->%d/%s", p.GetPublished(), p.GetTarget(), cmp.Or(p.GetProtocol(), "tcp")))
	}
	return strings.Join(out, ",")
}

// failureAction is --update-failure-action: pause, continue or rollback.
type failureAction api.UpdateConfig_FailureAction

func (a *failureAction) String() string { return api.UpdateConfig_FailureAction(*a).Name() }
func (a *failureAction) Type() string   { return "string" }

func (a *failureAction) Set(v string) error {
	switch v {
	case "pause":
		*a = failureAction(api.UpdateConfig_PAUSE)
	case "continue":
		*a = failureAction(api.UpdateConfig_CONTINUE)
	case "rollback":
		*a = failureAction(api.UpdateConfig_ROLLBACK)
	default:
		return errors.New(`use "pause", "continue" or "rollback"`)
	}
	return nil
}

// updateOrder is --update-order; only stop-first is built.
type updateOrder string

func (o *updateOrder) String() string { return string(*o) }
func (o *updateOrder) Type() string   { return "string" }

func (o *updateOrder) Set(v string) error {
	switch v {
	case "stop-first":
		*o = updateOrder(v)
		return nil
	case "start-first":
		return errors.New(`shoal stops the old task before it starts the new one: only "stop-first" is built`)
	}
	return errors.New(`use "stop-first"`)
}

// updateOptions are the --update-* flags of service create and update.
type updateOptions struct {
	parallelism   uint64
	delay         duration
	failureAction failureAction
	monitor       duration
	order         updateOrder
}

func defaultUpdateOptions() updateOptions {
	return updateOptions{parallelism: 1, monitor: duration(defaultUpdateMonitor), order: "stop-first"}
}

func addUpdateFlags(flags *pflag.FlagSet, o *updateOptions) {
	flags.Uint64Var(&o.parallelism, "update-parallelism", o.parallelism, "Maximum number of tasks updated simultaneously (0 to update all at once)")
	flags.Var(&o.delay, "update-delay", "Delay between updates (ns|us|ms|s|m|h)")
	flags.Var(&o.failureAction, "update-failure-action", `Action on update failure ("pause", "continue", "rollback")`)
	flags.Var(&o.monitor, "update-monitor", "Duration after each task update to monitor for failure (ns|us|ms|s|m|h)")
	flags.Var(&o.order, "update-order", `Update order ("stop-first")`)
}

// apply sets the fields of c whose flags were given (all of them when
// every is true, as for create).
func (o *updateOptions) apply(c *api.UpdateConfig, flags *pflag.FlagSet, every bool) {
	set := func(name string) bool { return every || flags.Changed(name) }
	if set("update-parallelism") {
		c.Parallelism = o.parallelism
	}
	if set("update-delay") {
		c.DelayNs = int64(o.delay)
	}
	if set("update-failure-action") {
		c.FailureAction = api.UpdateConfig_FailureAction(o.failureAction)
	}
	if set("update-monitor") {
		c.MonitorNs = int64(o.monitor)
	}
}

// restartOptions are the --restart-* flags of service create and update.
type restartOptions struct {
	condition restartCondition
	delay     duration
	attempts  uint64
	window    duration
}

func addRestartFlags(flags *pflag.FlagSet, o *restartOptions) {
	flags.Var(&o.condition, "restart-condition", `Restart when condition is met ("none", "on-failure", "any")`)
	flags.Var(&o.delay, "restart-delay", "Delay between restart attempts (ns|us|ms|s|m|h)")
	flags.Uint64Var(&o.attempts, "restart-max-attempts", 0, "Maximum number of restarts before giving up (0: no limit)")
	flags.Var(&o.window, "restart-window", "Window used to evaluate the restart policy (ns|us|ms|s|m|h) (0: unbounded)")
}

// apply sets the fields of p whose flags were given (all of them when
// every is true, as for create).
func (o *restartOptions) apply(p *api.RestartPolicy, flags *pflag.FlagSet, every bool) {
	set := func(name string) bool { return every || flags.Changed(name) }
	if set("restart-condition") {
		p.Condition = api.RestartPolicy_Condition(o.condition)
	}
	if set("restart-delay") {
		p.DelayNs = int64(o.delay)
	}
	if set("restart-max-attempts") {
		p.MaxAttempts = o.attempts
	}
	if set("restart-window") {
		p.WindowNs = int64(o.window)
	}
}
