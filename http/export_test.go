package http

import "os"

// DriveParked turns the driving of parked streams by events (drive.go) on
// and off, so that the tests can run the parked streams' goroutine path.
var DriveParked = &driveParked

// BurstGap is how soon after a write an event counts as part of a burst
// (drive.go), for the benchmarks.
var BurstGap = &burstGap

// BlockedWrites returns how many writes of driven streams had to wait for
// a goroutine of their own.
func BlockedWrites() int64 { return blockedWrites.Load() }

// Saturate makes the CPU count as saturated (1) or not (-1) whatever it
// measures, or as measured (0), for the writes that wait under load
// (hold.go). The tests run unsaturated unless RUNNEL_TEST_SATURATED=1.
func Saturate(v int32) { cpuLoad.forced.Store(v) }

// Saturated is what the tests run with: Saturate's argument.
var Saturated int32 = -1

func init() {
	if os.Getenv("RUNNEL_TEST_SATURATED") == "1" {
		Saturated = 1
	}
	Saturate(Saturated)
}
