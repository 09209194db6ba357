package pkg

const (
	A = 1
	b = 2
	C = 3
)

var V, w int

type T struct{ Field int }

func (T) Method() {}

func F() {}

func g() {}
