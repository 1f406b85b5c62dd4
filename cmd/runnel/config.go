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

func (c *config) Bool(p *bool, flagName, envName string, def bool, usage string) {
	v := def
	if s := c.env(envName); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s=%q: not a boolean", envName, s))
		}
		v = b
	}
	c.fs.BoolVar(p, flagName, v, c.help(envName, usage))
}

func (c *config) Int(p *int, flagName, envName string, def int, usage string) {
	v := def
	if s := c.env(envName); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s=%q: not a whole number", envName, s))
		}
		v = n
	}
	c.fs.IntVar(p, flagName, v, c.help(envName, usage))
}

func (c *config) Float(p *float64, flagName, envName string, def float64, usage string) {
	v := def
	if s := c.env(envName); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s=%q: not a number", envName, s))
		}
		v = f
	}
	c.fs.Float64Var(p, flagName, v, c.help(envName, usage))
}

func (c *config) Duration(p *time.Duration, flagName, envName string, def time.Duration, usage string) {
	v := def
	if s := c.env(envName); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("%s=%q: not a duration such as 30s or 5m", envName, s))
		}
		v = d
	}
	c.fs.DurationVar(p, flagName, v, c.help(envName, usage))
}

// err reports bad environment values.
func (c *config) err() error { return errors.Join(c.errs...) }
