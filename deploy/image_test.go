package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel"
	rhttp "github.com/runnel/runnel/http"
)

// version is what the tests' builds of runnel say they are.
const version = "deploytest"

// buildScript is the build of the image's binary, run by the Dockerfile.
const buildScript = "deploy/container/build.sh"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runnel-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	builds.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// builds are the binaries built by buildScript, one per GOARCH, shared by
// the tests of one run.
var builds struct {
	dir string
	mu  sync.Mutex
	m   map[string]*built
}

type built struct {
	once sync.Once
	path string
	took time.Duration
	err  error
}

// staticBinary returns runnel for linux/goarch, built by buildScript as the
// Dockerfile's build stage runs it: GOOS and GOARCH as BuildKit's
// TARGETOS and TARGETARCH, VERSION as the build argument, and no other Go
// settings from this environment.
func staticBinary(t *testing.T, goarch string) string {
	t.Helper()
	builds.mu.Lock()
	if builds.m == nil {
		builds.m = map[string]*built{}
	}
	b := builds.m[goarch]
	if b == nil {
		b = &built{}
		builds.m[goarch] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() {
		// The build ends with the test binary's deadline (with time left to
		// report it), and takes its compilers with it: a cold cache takes
		// minutes to compile the SQLite driver for one platform.
		ctx := context.Background()
		if d, ok := t.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, d.Add(-30*time.Second))
			defer cancel()
		}
		b.path = filepath.Join(builds.dir, "runnel-linux-"+goarch)
		cmd := exec.CommandContext(ctx, "sh", filepath.Join(root, buildScript), b.path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 10 * time.Second
		for _, kv := range os.Environ() {
			switch strings.SplitN(kv, "=", 2)[0] {
			case "GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS", "VERSION", "GO":
			default:
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "GOOS=linux", "GOARCH="+goarch, "VERSION="+version)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		b.took = time.Since(start)
		if err != nil {
			b.err = fmt.Errorf("GOOS=linux GOARCH=%s %s: %v\n%s", goarch, buildScript, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	t.Logf("%s: built in %v", filepath.Base(b.path), b.took.Round(time.Millisecond))
	return b.path
}

// dockerfile is what TestDockerfile reads of the Dockerfile.
type dockerfile struct {
	stages []stage
}

type stage struct {
	from  string   // the FROM line, without FROM
	lines []string // its instructions, continuation lines joined
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	var d dockerfile
	var cur string
	for _, line := range strings.Split(readFile(t, "Dockerfile"), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		instr := strings.Join(strings.Fields(cur), " ")
		cur = ""
		if rest, ok := strings.CutPrefix(instr, "FROM "); ok {
			d.stages = append(d.stages, stage{from: rest})
			continue
		}
		if len(d.stages) == 0 {
			continue // ARGs before the first FROM
		}
		s := &d.stages[len(d.stages)-1]
		s.lines = append(s.lines, instr)
	}
	if len(d.stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and the image", len(d.stages))
	}
	return d
}

// find returns the stage's instructions that start with prefix.
func (s stage) find(prefix string) []string {
	var out []string
	for _, l := range s.lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// imageCmd returns the final stage's ENTRYPOINT and CMD, checking that
// they are in exec (JSON) form.
func imageCmd(t *testing.T, d dockerfile) (entrypoint, cmd []string) {
	t.Helper()
	final := d.stages[len(d.stages)-1]
	for _, x := range []struct {
		name string
		dst  *[]string
	}{{"ENTRYPOINT", &entrypoint}, {"CMD", &cmd}} {
		lines := final.find(x.name + " ")
		if len(lines) != 1 {
			t.Fatalf("the image has %d %s instructions, want 1", len(lines), x.name)
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[0], x.name+" ")), x.dst); err != nil {
			t.Fatalf("%s is not in exec form: %v", lines[0], err)
		}
	}
	return entrypoint, cmd
}

// TestDockerfile checks the Dockerfile's shape: a build stage on the
// build platform that cross-compiles with buildScript for BuildKit's
// target, with the Go of go.mod; a distroless image that runs /runnel as a
// non-root user, serving on the port it exposes.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	build, final := d.stages[0], d.stages[len(d.stages)-1]

	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readFile(t, "go.mod"))
	if goVersion == nil {
		t.Fatal("go.mod has no go line")
	}
	if want := "--platform=$BUILDPLATFORM golang:" + goVersion[1] + "-"; !strings.HasPrefix(build.from, want) {
		t.Errorf("build stage: FROM %s, want FROM %s... (the build platform's Go %s, cross-compiling)", build.from, want, goVersion[1])
	}
	for _, arg := range []string{"ARG TARGETOS", "ARG TARGETARCH", "ARG VERSION"} {
		if len(build.find(arg)) == 0 {
			t.Errorf("build stage has no %s", arg)
		}
	}
	runs := 0
	for _, run := range build.find("RUN ") {
		if strings.Contains(run, buildScript) {
			runs++
			if !strings.Contains(run, "GOOS=$TARGETOS GOARCH=$TARGETARCH VERSION=$VERSION sh "+buildScript+" ") {
				t.Errorf("%s: want GOOS=$TARGETOS GOARCH=$TARGETARCH VERSION=$VERSION sh %s, as the tests run it", run, buildScript)
			}
		}
		if strings.Contains(run, "go build") {
			t.Errorf("%s: build with %s, the build the tests check", run, buildScript)
		}
	}
	if runs != 1 {
		t.Errorf("the build stage runs %s %d times, want once", buildScript, runs)
	}

	if final.from != "gcr.io/distroless/static-debian12:nonroot" && final.from != "scratch" {
		t.Errorf("image: FROM %s, want gcr.io/distroless/static-debian12:nonroot", final.from)
	}
	users := final.find("USER ")
	if len(users) == 0 {
		t.Error("the image sets no USER")
	} else if u := strings.Fields(users[len(users)-1])[1]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") {
		t.Errorf("the image runs as %s", u)
	}
	if len(final.find("HEALTHCHECK")) > 0 {
		t.Error("the image has a HEALTHCHECK: it has no program to run one with; probe GET /healthz")
	}
	entrypoint, cmd := imageCmd(t, d)
	if !slices.Equal(entrypoint, []string{"/runnel"}) {
		t.Errorf("ENTRYPOINT %q, want [/runnel]", entrypoint)
	}
	i := slices.Index(cmd, "--addr")
	if len(cmd) == 0 || cmd[0] != "serve" || i < 0 || i+1 >= len(cmd) {
		t.Fatalf("CMD %q, want serve --addr HOST:PORT", cmd)
	}
	_, port, _ := strings.Cut(cmd[i+1], ":")
	if expose := final.find("EXPOSE "); len(expose) != 1 || expose[0] != "EXPOSE "+port {
		t.Errorf("the image serves on port %s and says %q", port, expose)
	}

	// What the build must be given, the build context must hold.
	ignore := readFile(t, ".dockerignore")
	for _, need := range []string{"go.mod", "go.sum", "cmd", "deploy", "web", "corpus"} {
		if regexp.MustCompile(`(?m)^/?` + regexp.QuoteMeta(need) + `/?$`).MatchString(ignore) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", need)
		}
	}
}

// TestStaticBuild builds the image's binary as the Dockerfile does, for
// linux/amd64 and linux/arm64, and checks that each is static (no
// interpreter, no shared libraries) and was built as "make build" builds:
// no cgo, -trimpath, and the Makefile's LDFLAGS. It runs the one for this machine: runnel version, then the image's
// CMD (on a loopback port) answering /healthz and a streamed question, then
// SIGTERM. With a container engine, TestImage builds and runs the image.
func TestStaticBuild(t *testing.T) {
	ldflags := makefileLDFlags(t)
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			if arch != runtime.GOARCH && os.Getenv("RUNNEL_TEST_ALL_ARCHES") != "1" {
				// Building for another architecture compiles every package
				// again (minutes on a cold cache). Without
				// RUNNEL_TEST_ALL_ARCHES=1, check only what breaks such a
				// build: a package that has no files for it, or needs cgo.
				checkCrossBuildable(t, arch)
				return
			}
			bin := staticBinary(t, arch)
			checkStatic(t, bin, map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch])
			checkLDFlags(t, bin, ldflags)
			info, err := buildinfo.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			// Go records no -ldflags with -trimpath; checkLDFlags reads
			// their effects instead.
			want := map[string]string{
				"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": arch, "-trimpath": "true",
			}
			for _, s := range info.Settings {
				if w, ok := want[s.Key]; ok {
					if s.Value != w {
						t.Errorf("%s built with %s=%q, want %q", filepath.Base(bin), s.Key, s.Value, w)
					}
					delete(want, s.Key)
				}
			}
			for k, v := range want {
				t.Errorf("%s was built without %s=%s", filepath.Base(bin), k, v)
			}
		})
	}
	t.Run("runs", func(t *testing.T) {
		t.Parallel()
		if runtime.GOOS != "linux" || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
			t.Skipf("the image's binaries do not run on %s/%s", runtime.GOOS, runtime.GOARCH)
		}
		bin := staticBinary(t, runtime.GOARCH)
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "runnel "+version {
			t.Fatalf("runnel version: %q, %v; want %q", out, err, "runnel "+version)
		}
		// The image's CMD, with one more --addr (the last one wins) for a
		// free loopback port.
		_, cmd := imageCmd(t, readDockerfile(t))
		serveAndAsk(t, bin, append(cmd, "--addr", "127.0.0.1:0"))
	})
}

// makefileLDFlags returns the Makefile's LDFLAGS with VERSION set to
// version, after checking that its build target uses them with
// CGO_ENABLED=0 and -trimpath, as buildScript does.
func makefileLDFlags(t *testing.T) string {
	t.Helper()
	mk := readFile(t, "Makefile")
	m := regexp.MustCompile(`(?m)^LDFLAGS\s*:?=\s*(.*\S)\s*$`).FindStringSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile sets no LDFLAGS")
	}
	recipe := regexp.MustCompile(`(?m)^build:.*\n\t(.*)$`).FindStringSubmatch(mk)
	if recipe == nil || !strings.Contains(recipe[1], "CGO_ENABLED=0") || !strings.Contains(recipe[1], "-trimpath") ||
		!strings.Contains(recipe[1], "-ldflags '$(LDFLAGS)'") {
		t.Fatalf("the Makefile's build target is not CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)': %q", recipe)
	}
	return strings.ReplaceAll(m[1], "$(VERSION)", version)
}

// checkLDFlags checks that bin shows the effect of each of the Makefile's
// link flags: -s (no symbol table), -w (no DWARF) and -X
// main.Version=VERSION (the version is in it; TestStaticBuild/runs also
// runs "runnel version").
func checkLDFlags(t *testing.T, bin, ldflags string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags := strings.Fields(ldflags)
	for i := 0; i < len(flags); i++ {
		switch flag := flags[i]; {
		case flag == "-s":
			if f.Section(".symtab") != nil {
				t.Errorf("%s has a symbol table: not linked with -s", filepath.Base(bin))
			}
		case flag == "-w":
			for _, s := range f.Sections {
				if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
					t.Errorf("%s has DWARF (%s): not linked with -w", filepath.Base(bin), s.Name)
					break
				}
			}
		case flag == "-X" && i+1 < len(flags) && flags[i+1] == "main.Version="+version:
			i++
			data, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte(version)) {
				t.Errorf("%s does not hold its version %q: not linked with -X main.Version", filepath.Base(bin), version)
			}
		default:
			t.Errorf("the Makefile's LDFLAGS have %q, which this test does not know how to check", flag)
		}
	}
}

// checkStatic checks that the ELF file bin is for machine and needs no
// dynamic loader and no shared library.
func checkStatic(t *testing.T, bin string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("%s is for %v, want %v", filepath.Base(bin), f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not static", filepath.Base(bin), p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %q", filepath.Base(bin), libs)
	}
}

// serveAndAsk runs bin with args, which must make it serve on a loopback
// port, waits for the line that says where, checks /healthz and a streamed
// answer, then stops it with SIGTERM and expects a clean exit.
func serveAndAsk(t *testing.T, bin string, args []string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// Only the image's settings: none of this machine's RUNNEL_* or
	// OPENAI_* variables (a database, a model) reach the server.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RUNNEL_") && !strings.HasPrefix(kv, "OPENAI_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "RUNNEL_LOG_LEVEL=warn")
	lines, exited, stderr := start(t, cmd)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
	})

	var base string
	select {
	case line := <-lines:
		m := regexp.MustCompile(`^runnel: serving (\d+) articles on (http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(line)
		if m == nil || m[1] == "0" {
			t.Fatalf("runnel %s printed %q, want runnel: serving N articles on http://127.0.0.1:PORT", strings.Join(args, " "), line)
		}
		base = m[2]
	case err := <-exited:
		stopped = true
		t.Fatalf("runnel %s exited: %v\n%s", strings.Join(args, " "), err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("runnel %s did not say where it serves within 30s\n%s", strings.Join(args, " "), stderr.String())
	}
	checkServes(t, base)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("runnel exited with %v after SIGTERM, want 0\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Errorf("runnel did not stop within 30s of SIGTERM\n%s", stderr.String())
	}
}

// checkServes checks that the runnel at base is healthy and streams an
// answer to the end.
func checkServes(t *testing.T, base string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status   string
		Articles int
		Version  string
	}
	err = json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || h.Status != "ok" || h.Articles == 0 || h.Version != version {
		t.Fatalf("GET /healthz: %s %+v %v; want 200, ok, some articles, version %s", resp.Status, h, err, version)
	}
	var types []runnel.EventType
	var answer strings.Builder
	err = rhttp.NewClient(base).Ask(ctx, question, func(e runnel.Event) error {
		types = append(types, e.Type)
		answer.WriteString(e.Token)
		return nil
	})
	if err != nil || answer.Len() == 0 || types[len(types)-1] != runnel.EventDone {
		t.Fatalf("Ask(%q): %v, events %v, answer %q", question, err, types, answer.String())
	}
}

// TestImage builds the image and runs it, when a container engine answers:
// an import into a named volume as the image's user, then the image's CMD
// serving that database, read-only but for /tmp, on a loopback port.
func TestImage(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("no docker command; TestStaticBuild checks the image's build step")
	}
	run := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, docker, args...).CombinedOutput()
		if err != nil {
			return string(out), fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if _, err := run(10*time.Second, "info"); err != nil {
		t.Skipf("no container engine answers; TestStaticBuild checks the image's build step instead (%v)", firstLine(err))
	}
	if _, err := run(10*time.Second, "buildx", "version"); err != nil {
		t.Skipf("docker has no BuildKit (buildx), which the Dockerfile needs (%v)", firstLine(err))
	}
	name := fmt.Sprintf("runnel-deploytest-%d", time.Now().UnixNano())
	tag := name + ":" + version
	if _, err := run(20*time.Minute, "build", "--build-arg", "VERSION="+version, "-t", tag, root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run(time.Minute, "image", "rm", "-f", tag) })

	out, err := run(time.Minute, "image", "inspect", "--format", "{{json .Config}}", tag)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		User         string
		Entrypoint   []string
		Cmd          []string
		ExposedPorts map[string]struct{}
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("docker image inspect: %v\n%s", err, out)
	}
	if cfg.User != "65532:65532" || !slices.Equal(cfg.Entrypoint, []string{"/runnel"}) || cfg.Cmd[0] != "serve" {
		t.Errorf("image config: user %q, entrypoint %q, cmd %q", cfg.User, cfg.Entrypoint, cfg.Cmd)
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("image exposes %v, want 8080/tcp", cfg.ExposedPorts)
	}

	// The documented way to serve your own articles: import them into the
	// volume, then serve it.
	if _, err := run(time.Minute, "volume", "create", name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run(time.Minute, "volume", "rm", "-f", name) })
	articles, err := filepath.Abs(filepath.Join(root, "corpus", "articles"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := run(5*time.Minute, "run", "--rm", "-v", name+":/data", "-v", articles+":/articles:ro",
		tag, "import", "--db", "/data/runnel.db", "/articles"); err != nil {
		t.Fatalf("import into the volume as the image's user: %v\n%s", err, out)
	}

	cmd := exec.Command(docker, "run", "--rm", "--name", name, "--read-only", "--tmpfs", "/tmp",
		"-v", name+":/data", "-e", "RUNNEL_DB=/data/runnel.db", "-p", "127.0.0.1::8080", tag)
	lines, exited, stderr := start(t, cmd)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			run(time.Minute, "rm", "-f", name)
			<-exited
		}
	})
	select {
	case line := <-lines:
		if !strings.HasPrefix(line, "runnel: serving ") || strings.HasPrefix(line, "runnel: serving 0 ") {
			t.Fatalf("the container printed %q, want runnel: serving N articles ...", line)
		}
	case err := <-exited:
		stopped = true
		t.Fatalf("the container exited: %v\n%s", err, stderr.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("the container did not start serving within 2 minutes\n%s", stderr.String())
	}
	addr, err := run(time.Minute, "port", name, "8080/tcp")
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _ = strings.Cut(addr, "\n") // one line for IPv4, maybe one for IPv6
	checkServes(t, "http://"+addr)

	// docker stop sends SIGTERM: runnel ends its streams and exits 0.
	if _, err := run(time.Minute, "stop", "-t", "20", name); err != nil {
		t.Error(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("the container exited with %v after docker stop, want 0\n%s", err, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Error("the container did not stop within a minute of docker stop")
	}
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// checkCrossBuildable checks, without compiling, that every package the
// command imports builds for linux/arch with cgo off.
func checkCrossBuildable(t *testing.T, arch string) {
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if .CgoFiles}}{{.ImportPath}} needs cgo{{end}}{{with .Error}}{{.}}{{end}}", "./cmd/runnel")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("go list for linux/%s: %v\n%s", arch, err, out)
	}
}

// start starts cmd and returns its stdout's lines (each dropped unless a
// reader is waiting for it), what Wait returns once stdout is read to its
// end, and its stderr.
func start(t *testing.T, cmd *exec.Cmd) (lines <-chan string, exited <-chan error, stderr *lockedBuffer) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	out := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case out <- sc.Text():
			default:
			}
		}
		done <- cmd.Wait() // after stdout is read to its end, as Wait needs
	}()
	return out, done, stderr
}
