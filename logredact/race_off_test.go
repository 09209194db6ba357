//go:build !race

package logredact_test

const raceEnabled = false
