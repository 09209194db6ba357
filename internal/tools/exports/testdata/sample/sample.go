// Package sample is test input for the exports counter.
package sample

// Two exported constants and an unexported one.
const (
	A, B = 1, 2
	c    = 3
)

// V is exported, w is not.
var V, w int

// T has two exported fields, one embedded exported type and a method.
type T struct {
	X, Y int
	z    int
	Embedded
}

// Embedded is embedded in T.
type Embedded struct{}

// M is a method of an exported type: not a top-level identifier.
func (T) M() {}

// I has one exported method and one unexported.
type I interface {
	Do()
	undo()
}

type hidden struct{}

// Exported methods of unexported types are not counted.
func (hidden) M() {}

// F is a top-level function.
func F() {}

// G is generic.
func G[P any](P) {}

func f() {}
