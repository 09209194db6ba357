package main

import "sync"

// outQueue is a session's queue of stanzas for its client, bounded by
// limit. Its storage grows with what is queued and is released when the
// queue runs empty, so an idle session holds none (a buffered channel of
// Config.QueueSize elements held about 20 KiB per session).
type outQueue struct {
	mu    sync.Mutex
	items []element
	head  int // items[head:] are queued
	limit int
	ready chan struct{} // signaled after a push (capacity 1)
	space chan struct{} // signaled after a pop (capacity 1)
}

func newOutQueue(limit int) *outQueue {
	return &outQueue{limit: limit, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// push queues e; false when the queue is full.
func (q *outQueue) push(e element) bool {
	q.mu.Lock()
	if len(q.items)-q.head >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, e)
	q.mu.Unlock()
	wake(q.ready)
	return true
}

// pop takes the oldest stanza; false when the queue is empty.
func (q *outQueue) pop() (element, bool) {
	q.mu.Lock()
	if q.head == len(q.items) {
		q.mu.Unlock()
		return element{}, false
	}
	e := q.items[q.head]
	q.items[q.head] = element{}
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = nil, 0 // empty: the storage goes
	}
	q.mu.Unlock()
	wake(q.space)
	return e, true
}

// len is the number of queued stanzas.
func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// clear drops every queued stanza.
func (q *outQueue) clear() {
	q.mu.Lock()
	q.items, q.head = nil, 0
	q.mu.Unlock()
	wake(q.space)
}

// wake wakes whoever waits on c (capacity 1) without blocking.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
