package main

import (
	"runtime/debug"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	for _, tt := range []struct {
		main     string
		settings []debug.BuildSetting
		want     string
	}{
		{"v1.4.2", nil, "v1.4.2"},
		{"v0.0.0-20261201120000-abcdef123456", nil, "v0.0.0-20261201120000-abcdef123456"},
		{"(devel)", nil, "devel"},
		{"(devel)", []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-02T04:00:00Z"}},
			"devel-0123456789ab (2026-12-02T04:00:00Z)"},
		{"", []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}},
			"devel-0123456789ab-dirty"},
	} {
		info := &debug.BuildInfo{Main: debug.Module{Version: tt.main}, Settings: tt.settings}
		if got := buildVersion(info); got != tt.want {
			t.Errorf("%q %v: %q, want %q", tt.main, tt.settings, got, tt.want)
		}
	}
}
