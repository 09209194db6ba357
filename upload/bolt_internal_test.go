package upload

import (
	"testing"
	"time"
)

func TestRecordEncoding(t *testing.T) {
	r := Record{ID: "ignored", Owner: "alice@example.org", Filename: "日本.jpg", ContentType: "image/jpeg",
		Size: 1 << 40, Created: time.Unix(1_800_000_000, 123).UTC(), Expires: time.Unix(1_900_000_000, 0).UTC(), State: StateStored}
	got, err := decodeRecord(encodeRecord(r))
	r.ID = ""
	if err != nil || got != r {
		t.Fatalf("round trip = %+v, %v; want %+v", got, err, r)
	}
	for _, b := range [][]byte{nil, {}, {9}, {recordVersion, 3}, {recordVersion, 3, 0, 0, 0, 10, 'a'}} {
		if _, err := decodeRecord(b); err == nil {
			t.Errorf("decodeRecord(%q) accepted corrupt input", b)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(Record{Owner: "a@example.org", Filename: "x", Size: 3, State: StateReserved}))
	f.Add([]byte{recordVersion, 1, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(encodeRecord(r))
		if err != nil || again != r {
			t.Fatalf("re-encoding changed %+v to %+v (%v)", r, again, err)
		}
	})
}
