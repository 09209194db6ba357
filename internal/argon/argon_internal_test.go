package argon

import (
	"context"
	"errors"
	"testing"
)

// TestHasherWaits holds every slot of a Hasher and checks that a further
// Hash and Verify wait instead of computing (and give up with the context).
func TestHasherWaits(t *testing.T) {
	h, err := NewHasher(MinParams(), 2)
	if err != nil {
		t.Fatal(err)
	}
	phc, err := h.Hash(context.Background(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	for range h.Limit() {
		if err := h.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Hash with all slots taken = %v, want context.Canceled", err)
	}
	if _, err := h.Verify(ctx, "pw", phc); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify with all slots taken = %v, want context.Canceled", err)
	}
	h.release()
	if ok, err := h.Verify(context.Background(), "pw", phc); !ok || err != nil {
		t.Fatalf("Verify after a release = %v, %v", ok, err)
	}
}

func TestNewHasherDefaultLimit(t *testing.T) {
	h, err := NewHasher(MinParams(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if h.Limit() < 1 {
		t.Fatalf("Limit() = %d", h.Limit())
	}
}
