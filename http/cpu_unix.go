//go:build unix

package http

import (
	"syscall"
	"time"
)

// cpuClock says whether processCPU measures anything here.
const cpuClock = true

// processCPU returns the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
