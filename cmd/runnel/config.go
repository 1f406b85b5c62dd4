package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
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
// recorded, to be reported by err, and def is used.
func envDefault[T any](c *config, name string, def T, parse func(string) (T, error), want string) T {
	s := c.env(name)
	if s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s=%q: not %s", name, s, want))
		return def
	}
	return v
}

func (c *config) Bool(p *bool, flagName, envName string, def bool, usage string) {
	c.fs.BoolVar(p, flagName, envDefault(c, envName, def, strconv.ParseBool, "a boolean"), c.help(envName, usage))
}

func (c *config) Int(p *int, flagName, envName string, def int, usage string) {
	c.fs.IntVar(p, flagName, envDefault(c, envName, def, strconv.Atoi, "a whole number"), c.help(envName, usage))
}

func (c *config) Float(p *float64, flagName, envName string, def float64, usage string) {
	parse := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	c.fs.Float64Var(p, flagName, envDefault(c, envName, def, parse, "a number"), c.help(envName, usage))
}

func (c *config) Duration(p *time.Duration, flagName, envName string, def time.Duration, usage string) {
	c.fs.DurationVar(p, flagName, envDefault(c, envName, def, time.ParseDuration, "a duration such as 30s or 5m"), c.help(envName, usage))
}

// err reports bad environment values.
func (c *config) err() error { return errors.Join(c.errs...) }
