package http

// DriveParked turns the driving of parked streams by events (drive.go) on
// and off, so that the tests can run the parked streams' goroutine path.
var DriveParked = &driveParked

// BlockedWrites returns how many writes of driven streams had to wait for
// a goroutine of their own.
func BlockedWrites() int64 { return blockedWrites.Load() }
