package replica

import (
	"reflect"
	"testing"

	flowg "github.com/flowg-server/flowg-server"
)

func sampleAnswer() pullAnswer {
	return pullAnswer{
		Heads: map[string]uint64{"n0": 12, "n1": 7},
		Chunks: []chunk{
			{Origin: "n0", UpTo: 12, Records: []flowg.ReplRecord{
				{Stream: "app", TS: 1_700_000_000_000_000_000, Seq: 11, Value: []byte{1, 1, 'k', 1, 'v'}},
				{Stream: "syslog", TS: 1, Seq: 12, Value: []byte{0}},
			}},
			{Origin: "n2", UpTo: 3, Records: []flowg.ReplRecord{}},
		},
	}
}

func TestWire_RoundTripAndTruncation(t *testing.T) {
	a := sampleAnswer()
	b := encodeAnswer(a)
	got, err := decodeAnswer(b)
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for i := range len(b) {
		if _, err := decodeAnswer(b[:i]); err == nil {
			t.Fatalf("a truncation at %d of %d bytes decodes", i, len(b))
		}
	}
	if _, err := decodeAnswer(append(b, 0)); err == nil {
		t.Fatal("trailing bytes decode")
	}
	// A huge record count in a short answer is refused before allocating.
	if _, err := decodeAnswer([]byte{0, 1, 2, 'n', '0', 1, 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Fatal("an impossible record count decodes")
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(encodeAnswer(sampleAnswer()))
	f.Add([]byte{0, 0})
	f.Add([]byte{1, 2, 'n', '0', 5, 1, 2, 'n', '0', 5, 1, 3, 'a', 'p', 'p', 1, 5, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decodeAnswer(b)
		if err != nil {
			return
		}
		// What decodes encodes back to an answer that decodes the same.
		again, err := decodeAnswer(encodeAnswer(a))
		if err != nil || !reflect.DeepEqual(normal(again), normal(a)) {
			t.Fatalf("re-encoded answer differs: %v", err)
		}
	})
}

// normal makes nil and empty slices compare equal.
func normal(a pullAnswer) pullAnswer {
	for i := range a.Chunks {
		if len(a.Chunks[i].Records) == 0 {
			a.Chunks[i].Records = nil
		}
		for j := range a.Chunks[i].Records {
			if len(a.Chunks[i].Records[j].Value) == 0 {
				a.Chunks[i].Records[j].Value = nil
			}
		}
	}
	return a
}

// FuzzVersions: any versions tag parses to a valid range or an error, and
// the common version of two ranges lies in both.
func FuzzVersions(f *testing.F) {
	for _, s := range []string{"", "1", "1-1", "1-2", "2-1", "0-3", "-", "1-", "99999999999999999999"} {
		f.Add(s, "1-1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := parseVersions(a)
		vb, errB := parseVersions(b)
		if errA != nil || errB != nil {
			return
		}
		if va.min < 1 || va.max < va.min {
			t.Fatalf("parseVersions(%q) = %+v", a, va)
		}
		if c := va.common(vb); c != 0 && (c < va.min || c > va.max || c < vb.min || c > vb.max) {
			t.Fatalf("common(%+v, %+v) = %d", va, vb, c)
		}
	})
}
