package main

import (
	"testing"
	"time"
)

func TestBucketsTileTheRange(t *testing.T) {
	next := uint64(0)
	for i := range nBuckets {
		lo, hi := bucketRange(i)
		if lo != next || hi < lo {
			t.Fatalf("bucket %d is [%d, %d], want it to start at %d", i, lo, hi, next)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d [%d, %d]: bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= 1<<subBits && float64(hi-lo+1) > float64(lo)/half {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its values", i, lo, hi, half)
		}
		next = hi + 1
	}
	if next != maxUS+1 {
		t.Fatalf("buckets end at %d, want %d", next, maxUS+1)
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if h.Quantile(.99) != 0 {
		t.Fatal("an empty histogram has a p99")
	}
	for us := 1; us <= 10000; us++ {
		h.Record(time.Duration(us) * time.Microsecond)
	}
	h.Record(-time.Second) // counts as zero
	tests := []struct {
		q    float64
		want time.Duration // the exact value at that rank
	}{
		{0, 0},
		{.5, 5000 * time.Microsecond},
		{.9, 9000 * time.Microsecond},
		{.99, 9900 * time.Microsecond},
		{1, 10000 * time.Microsecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if got < tt.want || float64(got) > float64(tt.want)*(1+1.0/half)+float64(time.Microsecond) {
			t.Errorf("Quantile(%v) = %v, want %v to within a bucket", tt.q, got, tt.want)
		}
	}
	if h.Max() != 10*time.Millisecond || h.Count() != 10001 {
		t.Errorf("max %v count %d, want 10ms and 10001", h.Max(), h.Count())
	}

	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(1000 * time.Hour) // beyond the range: counted in the last bucket, max exact
	a.Merge(&b)
	if a.Count() != 3 || a.Max() != 1000*time.Hour || a.Quantile(.5) < 3*time.Millisecond || a.Quantile(.5) > 4*time.Millisecond {
		t.Errorf("merged: count %d max %v p50 %v", a.Count(), a.Max(), a.Quantile(.5))
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(100, func() { h.Record(1234 * time.Microsecond) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}
