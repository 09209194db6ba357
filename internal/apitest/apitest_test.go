package apitest

import (
	"slices"
	"testing"
)

func TestNames(t *testing.T) {
	got, err := Names("testdata/pkg")
	if err != nil {
		t.Fatal(err)
	}
	// Methods, fields, unexported names and test files do not count.
	if want := []string{"A", "C", "F", "T", "V"}; !slices.Equal(got, want) {
		t.Errorf("Names = %v, want %v", got, want)
	}
}

func TestCheck(t *testing.T) {
	if err := Check("testdata/pkg", 5); err != nil {
		t.Errorf("Check at the count: %v", err)
	}
	if err := Check("testdata/pkg", 4); err == nil {
		t.Error("Check with a bound below the count returned no error")
	}
	ExportCount(t, "testdata/pkg", 5)
}

func TestNamesMissingDir(t *testing.T) {
	if _, err := Names("testdata/none"); err == nil {
		t.Error("Names of a missing directory returned no error")
	}
}
