//go:build !unix

package http

import "time"

// cpuClock says whether processCPU measures anything here: not on this
// system, so writes never wait for saturation.
const cpuClock = false

func processCPU() time.Duration { return 0 }
