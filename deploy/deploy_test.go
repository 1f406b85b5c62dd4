// Package deploy_test checks the files that deploy runnel: the container
// image (Dockerfile and deploy/container/build.sh), compose.yaml with its
// nginx configuration (deploy/nginx/runnel.conf), and the systemd unit
// (deploy/systemd). It holds tests only.
//
// The nginx tests run Debian's nginx (scripts/ensure-nginx.sh installs it;
// RUNNEL_NGINX names another) with the very file compose.yaml mounts, in
// front of a real runnel server, all on 127.0.0.1. Without an nginx they are
// skipped, unless RUNNEL_REQUIRE_NGINX=1 (as CI sets it) makes that a failure.
package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// root is the repository's root, relative to this package.
const root = ".."

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// compose is the part of compose.yaml the tests read.
type compose struct {
	Services map[string]struct {
		Environment     map[string]string `yaml:"environment"`
		Volumes         []string          `yaml:"volumes"`
		Expose          []string          `yaml:"expose"`
		StopGracePeriod string            `yaml:"stop_grace_period"`
		ReadOnly        bool              `yaml:"read_only"`
		Tmpfs           []string          `yaml:"tmpfs"`
	} `yaml:"services"`
}

func readCompose(t *testing.T) compose {
	t.Helper()
	var c compose
	if err := yaml.Unmarshal([]byte(readFile(t, "compose.yaml")), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, name := range []string{"runnel", "nginx"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("compose.yaml has no service %q", name)
		}
	}
	return c
}

// nginxConfPath returns the file compose.yaml mounts as nginx's server
// configuration, relative to the repository's root.
func nginxConfPath(t *testing.T) string {
	t.Helper()
	for _, v := range readCompose(t).Services["nginx"].Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && strings.HasPrefix(parts[1], "/etc/nginx/conf.d/") {
			return filepath.Clean(parts[0])
		}
	}
	t.Fatal("compose.yaml mounts no file into the nginx service's /etc/nginx/conf.d/")
	return ""
}

// envVar matches a RUNNEL_* variable name.
var envVar = regexp.MustCompile(`RUNNEL_[A-Z0-9_]+`)

// serveEnv returns the RUNNEL_* variables "runnel serve -h" names.
func serveEnv(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, err := exec.Command(bin, "serve", "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("runnel serve -h: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, n := range envVar.FindAllString(string(out), -1) {
		names[n] = true
	}
	if !names["RUNNEL_ADDR"] || !names["RUNNEL_DB"] {
		t.Fatalf("runnel serve -h names no RUNNEL_ADDR or RUNNEL_DB:\n%s", out)
	}
	return names
}

// checkArgs runs bin with args and -h: runnel parses every flag before it
// stops at -h, so an unknown flag in args fails.
func checkArgs(t *testing.T, bin, what string, args []string) {
	t.Helper()
	out, err := exec.Command(bin, append(append([]string{}, args...), "-h")...).CombinedOutput()
	if err != nil {
		t.Errorf("%s: runnel %s: %v\n%s", what, strings.Join(args, " "), err, out)
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// parseNginxTime parses an nginx time such as 90s, 5m or 1h.
func parseNginxTime(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	if s[len(s)-1] >= '0' && s[len(s)-1] <= '9' {
		s += "s" // nginx's default unit
	}
	d, err := time.ParseDuration(s)
	return d, err == nil
}
