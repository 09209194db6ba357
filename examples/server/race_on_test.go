//go:build race

package main

// raceEnabled: the race detector is on. TestLoad is skipped then: the
// detector multiplies CPU time and memory several times over, so neither
// its time budget nor its memory bound would mean anything.
const raceEnabled = true
