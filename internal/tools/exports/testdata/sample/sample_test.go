package sample

// Test files are not counted.
func TestOnly() {}
