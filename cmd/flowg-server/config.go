package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/flowg-server/flowg-server/node"
	"github.com/peterbourgon/ff/v3"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// errUsage is a command line that does not parse; the flag package has
// already printed why.
var errUsage = errors.New("usage")

// config is everything the command line and FLOWG_* variables say: the
// node's configuration, whose packages register their own flags, and what
// only the command has.
type config struct {
	node                     node.Config
	logLevel, logFormat      string
	showVersion, healthProbe bool
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{node: node.DefaultConfig()}
	fs := flag.NewFlagSet("flowg-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.node.RegisterFlags(fs)
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	fs.BoolVar(&c.healthProbe, "health-probe", false, "ask the management /health of the node running with these flags (on --mgmt-bind) and exit 0 when it answers 200, else 1: a container health check for images without curl")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: flowg-server [flags]\n\nEvery flag is also read from FLOWG_<NAME> (e.g. --cluster-cookie from FLOWG_CLUSTER_COOKIE); flags win.\n\n")
		fs.PrintDefaults()
	}
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("FLOWG")); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		if strings.HasPrefix(err.Error(), "error parsing environment") {
			fmt.Fprintln(stderr, err)
		}
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		return nil, errUsage
	}
	return c, nil
}

// validate checks the command's own values; the node's check their own.
func (c *config) validate() error {
	if _, err := parseLevel(c.logLevel); err != nil {
		return fmt.Errorf("--log-level %q: %w", c.logLevel, err)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("--log-format %q: use text or json", c.logFormat)
	}
	return c.node.Validate()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, errors.New("use debug, info, warn or error")
	}
	return l, nil
}
