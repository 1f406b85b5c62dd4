package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	rhttp "github.com/runnel/runnel/http"
)

// stopMargin is how much longer than runnel's shutdown grace a supervisor
// must wait before it kills: runnel also closes its store and its runs.
const stopMargin = 5 * time.Second

// TestCompose checks compose.yaml against runnel: the variables it sets
// exist, Docker waits out the shutdown grace before it kills, and the
// read-only container keeps a writable /tmp for the temporary database of
// the embedded articles. (TestNginx runs the nginx file it mounts.)
func TestCompose(t *testing.T) {
	c := readCompose(t)
	rn := c.Services["runnel"]
	names := serveEnv(t, staticBinary(t, runtime.GOARCH))
	for k := range rn.Environment {
		if !names[k] {
			t.Errorf("compose.yaml sets %s, which runnel serve does not read", k)
		}
	}
	grace, ok := parseNginxTime(rn.StopGracePeriod) // same units as compose's
	if want := shutdownTimeout(t, rn.Environment["RUNNEL_SHUTDOWN_TIMEOUT"]) + stopMargin; !ok || grace < want {
		t.Errorf("runnel's stop_grace_period is %q, want at least %v (--shutdown-timeout and a margin)", rn.StopGracePeriod, want)
	}
	if rn.ReadOnly && !strings.Contains(strings.Join(rn.Tmpfs, " "), "/tmp") {
		t.Error("runnel's container is read-only without a tmpfs on /tmp, where the embedded articles' database goes")
	}
}

// TestSystemdUnit checks deploy/systemd: the unit's command and variables
// are runnel's, systemd waits out the shutdown grace, the database path
// in the example is the state directory, and, where systemd-analyze is
// installed, that systemd reads the unit without a complaint and rates its
// sandbox at most 2.0 ("OK") on its exposure scale.
func TestSystemdUnit(t *testing.T) {
	unit := readFile(t, "deploy/systemd/runnel.service")
	envFile := readFile(t, "deploy/systemd/runnel.env")
	svc := unitSection(unit, "Service")
	bin := staticBinary(t, runtime.GOARCH)
	names := serveEnv(t, bin)

	exec0 := strings.Fields(last(svc["ExecStart"]))
	if len(exec0) < 2 || exec0[0] != "/usr/local/bin/runnel" || exec0[1] != "serve" {
		t.Fatalf("ExecStart=%s, want /usr/local/bin/runnel serve ...", last(svc["ExecStart"]))
	}
	checkArgs(t, bin, "ExecStart", exec0[1:])

	// Environment= in the unit, then the file (which wins), as systemd
	// applies them. The file's commented examples must be real too.
	env := map[string]string{}
	for _, line := range svc["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	for _, m := range envLine.FindAllStringSubmatch(envFile, -1) {
		k, v := m[2], m[3]
		if m[1] == "" {
			env[k] = v
		}
		if !names[k] {
			t.Errorf("runnel.env names %s, which runnel serve does not read", k)
		}
	}
	for k := range env {
		if !names[k] {
			t.Errorf("the unit sets %s, which runnel serve does not read", k)
		}
	}
	if db := "RUNNEL_DB=/var/lib/" + last(svc["StateDirectory"]) + "/"; !strings.Contains(envFile, db) {
		t.Errorf("runnel.env does not put the database in the unit's StateDirectory (%s...)", db)
	}

	stop, err := time.ParseDuration(last(svc["TimeoutStopSec"]))
	if want := shutdownTimeout(t, env["RUNNEL_SHUTDOWN_TIMEOUT"]) + stopMargin; err != nil || stop < want {
		t.Errorf("TimeoutStopSec=%s, want at least %v (--shutdown-timeout and a margin)", last(svc["TimeoutStopSec"]), want)
	}
	for key, want := range map[string]string{
		"KillSignal": "SIGTERM", "Restart": "on-failure", "NoNewPrivileges": "yes",
		"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "DynamicUser": "yes",
	} {
		if got := last(svc[key]); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	if !strings.Contains(last(svc["RestrictAddressFamilies"]), "AF_INET") {
		t.Errorf("RestrictAddressFamilies=%s leaves runnel no way to listen", last(svc["RestrictAddressFamilies"]))
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("no systemd-analyze: the unit is not verified")
		return
	}
	// A copy whose ExecStart is the binary built here, which verify
	// requires to exist.
	path := filepath.Join(t.TempDir(), "runnel.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "ExecStart=/usr/local/bin/runnel ", "ExecStart="+bin+" ")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "runnel.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
	switch {
	case err != nil && strings.Contains(string(out), "unrecognized option"):
		t.Logf("this systemd-analyze cannot rate a unit offline: %s", firstLine(err))
	case err != nil:
		t.Errorf("systemd-analyze security rates the unit above 2.0 (or failed: %v):\n%s", err, out)
	}
}

// envLine matches a VARIABLE=value line of an environment file, maybe
// commented out.
var envLine = regexp.MustCompile(`(?m)^(#?)([A-Z][A-Z0-9_]*)=(.*)$`)

// shutdownTimeout returns the shutdown grace that value (a
// RUNNEL_SHUTDOWN_TIMEOUT, maybe empty) gives runnel.
func shutdownTimeout(t *testing.T, value string) time.Duration {
	t.Helper()
	if value == "" {
		return rhttp.DefaultShutdownTimeout
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		t.Fatalf("RUNNEL_SHUTDOWN_TIMEOUT=%s: %v", value, err)
	}
	return d
}

// unitSection returns the settings of section in a systemd unit file, each
// key with its values in order.
func unitSection(unit, section string) map[string][]string {
	out := map[string][]string{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			in = line == "["+section+"]"
		case in:
			k, v, _ := strings.Cut(line, "=")
			out[strings.TrimSpace(k)] = append(out[strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

func last(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[len(values)-1]
}
