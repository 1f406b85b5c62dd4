package sqlite

import (
	"slices"
	"testing"

	"github.com/runnel/runnel"
)

func TestDefinitionSubject(t *testing.T) {
	for _, c := range []struct {
		q    string
		want []string
	}{
		{"What is a WebSocket?", []string{"websocket"}},
		{"what are Debian packages", []string{"debian", "packages"}},
		{"What is Debian GNU/Linux?", []string{"debian", "gnu", "linux"}},
		{"what's QUIC", []string{"quic"}},
		{"What does backpressure mean?", []string{"backpressure"}},
		{"define head-of-line blocking", []string{"head", "of", "line", "blocking"}},
		{"how do I close a websocket", nil},
		{"what is the difference between docker stop and docker kill", nil}, // too long to be a subject
		{"what is", nil},
		{"OK, now I know what Debian is... what is Linux?!", []string{"linux"}},
		{"What is QUIC? How does it start?", nil}, // the last sentence asks
		{"What is HTTP/1.1?", []string{"http", "1", "1"}},
	} {
		if got := definitionSubject(c.q); !slices.Equal(got, c.want) {
			t.Errorf("definitionSubject(%q) = %q, want %q", c.q, got, c.want)
		}
	}
}

func TestDefinedSubjects(t *testing.T) {
	an := analyzerFor("en")
	for _, c := range []struct {
		text string
		want []string
	}{
		{"Debian GNU/Linux is a particular distribution of the Linux operating system.",
			[]string{subjectKey(an, []string{"debian", "gnu", "linux"})}},
		{"In short, Linux is the kernel of a Unix-like operating system. It was designed for PCs.",
			[]string{subjectKey(an, []string{"linux"})}},
		{"Packages generally contain all of the files necessary.", nil},
		{"Some proxies drop idle connections. A WebSocket is a full-duplex channel.",
			[]string{subjectKey(an, []string{"websocket"})}},
		{"First line.\n\n* Binary packages are archives of executables.",
			[]string{subjectKey(an, []string{"binary", "packages"})}},
	} {
		if got := definedSubjects(an, c.text); !slices.Equal(got, c.want) {
			t.Errorf("definedSubjects(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

// TestSearchDefinition shows that a definition question ranks first the
// passage that defines its subject, above passages that mention the
// subject more often.
func TestSearchDefinition(t *testing.T) {
	s := mustOpen(t)
	for _, a := range []*runnel.Article{
		{Slug: "proxies", Title: "Proxies and long streams", Passages: []runnel.Passage{
			{Text: "Proxies buffer. A long poll, a WebSocket upgrade and a WebSocket ping each pass a proxy differently; a WebSocket needs the Upgrade header."},
		}},
		{Slug: "channels", Title: "Channels", Passages: []runnel.Passage{
			{Text: "A WebSocket is a full-duplex channel over one TCP connection, opened by an HTTP upgrade."},
		}},
	} {
		mustPut(t, s, a)
	}
	if got := slugsOf(mustSearch(t, s, "what is a websocket?", 2)); len(got) == 0 || got[0] != "channels" {
		t.Errorf("what is a websocket: %v, want the defining passage first", got)
	}
	// Without the definition factor the passage that mentions it most wins,
	// so the test above measures the factor.
	r := DefaultRanking
	r.Definition = 0
	s.SetRanking(r)
	if got := slugsOf(mustSearch(t, s, "what is a websocket?", 2)); len(got) == 0 || got[0] != "proxies" {
		t.Errorf("without the factor: %v, want proxies first", got)
	}
}
