package deploy_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestRelease runs make release for this machine's platform (the other
// three are the same build with another GOOS or GOARCH; building them here
// would compile everything again) and checks the binary's name, that it
// reports the release's version, and its line in SHA256SUMS.
func TestRelease(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skipf("no release for %s", runtime.GOOS)
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("no sha256sum")
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	// under the repository, so run it against a copy of that path.
	cmd := exec.Command("make", "-s", "release", "VERSION=v9.8.7-test", "RELEASE_PLATFORMS="+platform)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, b)
	}
	dist := filepath.Join("..", "dist", "release")
	t.Cleanup(func() { os.RemoveAll(dist) })
	name := "runnel-v9.8.7-test-" + runtime.GOOS + "-" + runtime.GOARCH
	bin := filepath.Join(dist, name)
	got, err := exec.Command(bin, "version").Output()
	if err != nil || strings.TrimSpace(string(got)) != "runnel v9.8.7-test" {
		t.Errorf("%s version: %q, %v", name, got, err)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; string(sums) != want {
		t.Errorf("SHA256SUMS = %q, want %q", sums, want)
	}
}
