package http

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDeadlines checks the server's list of the runs' maximum durations:
// each run is canceled with errTooLong once it is due, in the order they
// are due whatever the order they were added in, a run taken off is not,
// and one not due yet stays listed.
func TestDeadlines(t *testing.T) {
	var ds deadlines
	canceled := make(chan string, 8)
	run := func(name string, in time.Duration) *runContext {
		return &runContext{Context: context.Background(), due: monoNow() + int64(in), cancel: func(cause error) {
			if !errors.Is(cause, errTooLong) {
				t.Errorf("%s canceled with %v, want errTooLong", name, cause)
			}
			canceled <- name
		}}
	}
	late, soon, removed, later, past := run("late", 60*time.Millisecond), run("soon", 10*time.Millisecond),
		run("removed", 30*time.Millisecond), run("later", time.Hour), run("past", -time.Second)
	for _, c := range []*runContext{late, later, soon, removed} {
		ds.add(c)
	}
	ds.remove(removed)
	ds.remove(removed) // twice is once
	for _, want := range []string{"soon", "late"} {
		select {
		case got := <-canceled:
			if got != want {
				t.Fatalf("canceled %s, want %s next", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s was not canceled", want)
		}
	}
	ds.add(past)
	select {
	case got := <-canceled:
		if got != "past" {
			t.Fatalf("canceled %s, want past", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a run already due was not canceled")
	}
	ds.mu.Lock()
	if ds.head != later || ds.tail != later || later.prev != nil || later.next != nil {
		t.Errorf("the list is not the one run not due yet")
	}
	ds.mu.Unlock()
	select {
	case got := <-canceled:
		t.Errorf("%s canceled as well", got)
	default:
	}
	ds.remove(later)
	ds.remove(late) // expired already: nothing to take off
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.head != nil || ds.tail != nil {
		t.Error("the list is not empty once every run is off it")
	}
}
