package main

import (
	"math"
	"math/bits"
	"time"
)

// A Histogram counts durations at microsecond resolution in log-linear
// buckets, as HdrHistogram does with two significant digits: every value
// below 128 µs has a bucket of its own, and above that each power of two is
// cut into 64 buckets, so a bucket is at most 1/64 (1.6 %) of its values
// wide. It covers 0 to 2^37 µs (38 hours; longer values count as that) in a
// fixed 16 KiB. The zero value is empty and ready; it is not safe for
// concurrent use (each connection keeps its own and they are merged).
type Histogram struct {
	counts [nBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	subBits  = 7                  // values below 1<<subBits µs are exact
	half     = 1 << (subBits - 1) // buckets per power of two above that
	maxUS    = 1<<37 - 1
	nBuckets = (37-subBits)*half + 1<<subBits
)

// bucketOf returns the bucket of a value in microseconds.
func bucketOf(us uint64) int {
	if us < 1<<subBits {
		return int(us)
	}
	shift := bits.Len64(us) - subBits
	return shift*half + int(us>>shift)
}

// bucketRange returns the smallest and largest value, in microseconds,
// that fall in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 1<<subBits {
		return uint64(i), uint64(i)
	}
	shift := i/half - 1
	m := uint64(i - shift*half)
	return m << shift, (m+1)<<shift - 1
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	us := min(uint64(d/time.Microsecond), maxUS)
	h.counts[bucketOf(us)]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count returns how many durations were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest duration recorded, exactly.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the value at or below which a fraction q of the
// recorded durations lie: the top of the bucket holding that rank (so at
// most 1.6 % above the true value, and never above Max), or 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := bucketRange(i)
			return min(time.Duration(hi+1)*time.Microsecond-1, h.max)
		}
	}
	return h.max
}
