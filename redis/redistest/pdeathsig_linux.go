package redistest

import (
	"os/exec"
	"syscall"
)

// orphanless makes the kernel kill the server if the test process dies
// without its cleanup (a panic, a timeout's kill), so that no redis-server
// outlives its test.
func orphanless(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
