//go:build linux

package http

import (
	"sync"
	"syscall"
)

// On Linux the connections of parked streams are watched by one epoll set
// for the whole process, not by a goroutine each: the set reports when a
// client closes its connection (EPOLLRDHUP, or a hang-up or error), and
// one goroutine, running only while some stream is parked, turns that
// into the stream's cancellation. Nothing is read, so bytes a client sends
// early (its next request) stay in the socket for net/http to read once
// the connection is given back.
type epollWatch struct {
	once    sync.Once
	err     error
	epfd    int
	wake    [2]int // a pipe that wakes the loop when the last watch ends
	mu      sync.Mutex
	conns   map[int32]*parking // by file descriptor
	gen     int32              // tells a reused descriptor from the one watched
	running bool
}

var watches epollWatch

func (w *epollWatch) init() {
	w.conns = make(map[int32]*parking)
	if w.epfd, w.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); w.err != nil {
		return
	}
	if w.err = syscall.Pipe2(w.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); w.err != nil {
		return
	}
	// Generation 0 is the wake pipe's.
	w.err = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, w.wake[0], &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(w.wake[0])})
}

// startWatch begins watching pk's connection. It reports false when it
// cannot (no epoll, or a connection that is not a socket of its own, such
// as TLS): the caller watches with a goroutine instead.
func startWatch(pk *parking) bool {
	w := &watches
	w.once.Do(w.init)
	sc, ok := pk.conn.(syscall.Conn)
	if w.err != nil || !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen++; w.gen <= 0 {
		w.gen = 1
	}
	var added error
	if err := rc.Control(func(fd uintptr) {
		pk.fd = int32(fd)
		ev := syscall.EpollEvent{Events: syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR, Fd: int32(fd), Pad: w.gen}
		added = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	}); err != nil || added != nil {
		return false
	}
	pk.rc, pk.gen = rc, w.gen
	w.conns[pk.fd] = pk
	if !w.running {
		w.running = true
		go w.loop()
	}
	return true
}

// stopWatch ends the watch of pk's connection, before the connection is
// closed or given back.
func stopWatch(pk *parking) {
	w := &watches
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conns[pk.fd] != pk {
		return // reported already, or the descriptor was closed and reused
	}
	w.forget(pk)
	if len(w.conns) == 0 {
		syscall.Write(w.wake[1], []byte{0})
	}
}

// forget removes pk from the set; w.mu is held.
func (w *epollWatch) forget(pk *parking) {
	delete(w.conns, pk.fd)
	// Through Control, so that a descriptor already closed (and perhaps
	// reused) is left alone.
	pk.rc.Control(func(fd uintptr) {
		syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// loop waits for the set's events until no stream is watched.
func (w *epollWatch) loop() {
	var evs [64]syscall.EpollEvent
	var drain [64]byte
	for {
		n, err := syscall.EpollWait(w.epfd, evs[:], -1)
		if err == syscall.EINTR {
			continue
		}
		w.mu.Lock()
		if err != nil {
			// Not expected; the streams still watched are then seen to
			// be gone at their next write, as without a watch.
			w.running = false
			w.mu.Unlock()
			return
		}
		for _, ev := range evs[:n] {
			if ev.Pad == 0 {
				for {
					if n, err := syscall.Read(w.wake[0], drain[:]); n <= 0 || err != nil {
						break
					}
				}
				continue
			}
			pk, ok := w.conns[ev.Fd]
			if !ok || pk.gen != ev.Pad {
				continue
			}
			w.forget(pk)
			pk.cancel(errClientGone)
			if pk.gone != nil {
				go pk.gone()
			}
		}
		if len(w.conns) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
	}
}

// oneWrite writes to a socket watched by epoll only if the socket takes
// the bytes without waiting (drive.go). A parked stream keeps one, so that
// the function RawConn.Write calls is made once, not for every token.
type oneWrite struct {
	b   []byte
	n   int
	err error
	f   func(fd uintptr) bool
}

// write writes b, if the socket takes it without waiting. It returns how
// much it wrote, and errWouldBlock when that was not all of it.
func (w *oneWrite) write(rc syscall.RawConn, b []byte) (n int, err error) {
	if w.f == nil {
		w.f = w.try
	}
	w.b, w.n, w.err = b, 0, nil
	cerr := rc.Write(w.f)
	n, err = max(w.n, 0), w.err
	w.b, w.err = nil, nil
	if cerr != nil {
		return 0, cerr
	}
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return n, errWouldBlock
	case err == nil && n < len(b):
		return n, errWouldBlock
	}
	return n, err
}

// try is the one attempt: it never waits for the socket.
func (w *oneWrite) try(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.b)
	return true
}
