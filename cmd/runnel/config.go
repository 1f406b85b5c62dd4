package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// config binds flags to a FlagSet with defaults from environment variables,
// collecting bad environment values so the command can refuse to start.
type config struct {
	fs   *flag.FlagSet
	env  func(string) string
	errs []error
}

func newConfig(name string, env func(string) string) *config {
	return &config{fs: flag.NewFlagSet("runnel "+name, flag.ContinueOnError), env: env}
}

func (c *config) help(name, def string) string {
	return fmt.Sprintf("%s (env %s)", def, name)
}

func (c *config) String(p *string, flagName, envName, def, usage string) {
	c.fs.StringVar(p, flagName, cmp.Or(c.env(envName), def), c.help(envName, usage))
}

// envDefault returns the value of the environment variable name parsed
// with parse, or def when it is unset. A value that does not parse is
// recorded, to be reported by err, with what want says of it, and def is
// used.
func envDefault[T any](c *config, name string, def T, parse func(string) (T, error), want func(string) string) T {
	s := c.env(name)
	if s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s=%q: %s", name, s, want(s)))
		return def
	}
	return v
}

// not returns a want for envDefault that says the value is not what.
func not(what string) func(string) string {
	return func(string) string { return "not " + what }
}

// notDuration says why s is not a duration. The common slip is a number
// without a unit ("30" for 30ms), which time.ParseDuration refuses with
// only "missing unit".
func notDuration(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return "not a duration; write it with a unit, such as 30ms or 2s"
	}
	return "not a duration; write a number and a unit (ns, us, ms, s, m, h), such as 30ms, 2s or 1m30s"
}

func (c *config) Bool(p *bool, flagName, envName string, def bool, usage string) {
	c.fs.BoolVar(p, flagName, envDefault(c, envName, def, strconv.ParseBool, not("true or false")), c.help(envName, usage))
}

func (c *config) Int(p *int, flagName, envName string, def int, usage string) {
	c.fs.IntVar(p, flagName, envDefault(c, envName, def, strconv.Atoi, not("a whole number")), c.help(envName, usage))
}

func (c *config) Float(p *float64, flagName, envName string, def float64, usage string) {
	parse := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	c.fs.Float64Var(p, flagName, envDefault(c, envName, def, parse, not("a number")), c.help(envName, usage))
}

func (c *config) Duration(p *time.Duration, flagName, envName string, def time.Duration, usage string) {
	c.fs.DurationVar(p, flagName, envDefault(c, envName, def, time.ParseDuration, notDuration), c.help(envName, usage))
}

// err reports bad environment values.
func (c *config) err() error { return errors.Join(c.errs...) }

// badValue matches the flag package's errors for a value that does not
// parse: the quoted value, the flag's name and the reason.
var badValue = regexp.MustCompile(`(?s)^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-([^:]+): (.*)$`)

// flagMessage rewrites an error of flag.FlagSet.Parse for a person: the
// flag package says `invalid value "30" for flag -token-delay: parse error`;
// this says `--token-delay 30: not a duration; write it with a unit, ...`.
// Other errors are returned as they are.
func flagMessage(fs *flag.FlagSet, err error) string {
	m := badValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	value, uerr := strconv.Unquote(m[1])
	if uerr != nil {
		value = m[1]
	}
	name, why, sep := m[2], m[3], " "
	if f := fs.Lookup(name); f != nil && why == "parse error" {
		if g, ok := f.Value.(flag.Getter); ok {
			switch g.Get().(type) {
			case time.Duration:
				why = notDuration(value)
			case int, int64, uint, uint64:
				why = "not a whole number"
			case float64:
				why = "not a number"
			case bool:
				why, sep = "not true or false", "=" // --json false is -json and an argument
			}
		}
	}
	return fmt.Sprintf("--%s%s%s: %s", name, sep, value, why)
}
