package http

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestClientKey(t *testing.T) {
	g := &guard{limits: Limits{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	}}}
	for _, tt := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:5000", nil, "192.0.2.1"},
		{"192.0.2.1:5000", []string{"203.0.113.5"}, "192.0.2.1"}, // not from a trusted proxy
		{"10.0.0.2:80", []string{"203.0.113.5"}, "203.0.113.5"},
		{"10.0.0.2:80", []string{"198.51.100.9, 203.0.113.5, 10.1.1.1"}, "203.0.113.5"},   // the rightmost untrusted
		{"10.0.0.2:80", []string{"198.51.100.9", "203.0.113.5, 10.1.1.1"}, "203.0.113.5"}, // several headers
		{"10.0.0.2:80", []string{"10.1.1.1"}, "10.1.1.1"},                                 // only proxies: the farthest
		{"10.0.0.2:80", []string{"garbage, 203.0.113.5"}, "203.0.113.5"},
		{"10.0.0.2:80", []string{"203.0.113.5, garbage"}, "10.0.0.2"}, // a hop that does not parse ends the walk
		{"10.0.0.2:80", []string{""}, "10.0.0.2"},
		{"[::ffff:192.0.2.1]:80", nil, "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:80", nil, "2001:db8:1:2::/64"}, // IPv6 by its /64
		{"[::1]:80", []string{"2001:db8:1:2::99"}, "2001:db8:1:2::/64"},
	} {
		r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{"X-Forwarded-For": tt.xff}}
		if got := g.clientKey(r); got != tt.want {
			t.Errorf("%s, X-Forwarded-For %q: %q, want %q", tt.remote, tt.xff, got, tt.want)
		}
	}
}

// The map of clients forgets a client that holds nothing and could ask at
// its full burst again.
func TestGuardForgetsIdleClients(t *testing.T) {
	g := &guard{limits: Limits{MaxStreamsPerClient: 2, QuestionRate: 1}, burst: 1, clients: map[string]*clientShare{}}
	now := time.Unix(1e9, 0)
	release, no := g.admit("a", true, now)
	if no != nil {
		t.Fatal(no.err)
	}
	if _, no := g.admit("a", true, now); no == nil || no.after != time.Second {
		t.Fatalf("second question at once: %v, want refused for 1 s", no)
	}
	release()
	release() // twice is once
	if g.open != 0 || g.clients["a"].open != 0 {
		t.Fatalf("after release: %d open, client %d", g.open, g.clients["a"].open)
	}
	g.sweep(now.Add(2 * time.Minute))
	if len(g.clients) != 0 {
		t.Errorf("clients kept after a sweep: %v", g.clients)
	}
}
