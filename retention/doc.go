// Package retention enforces the lifetime of stored data: a scheduler runs
// expiry jobs over anything that can drop data older than a cutoff, and a
// report lists each kind of data, its lifetime and the job that enforces it.
package retention
