// Package superpixel cuts images into superpixels, the features image
// explainers (AnchorImages, LimeImages) switch on and off: SLIC (Achanta
// et al., "SLIC superpixels compared to state-of-the-art superpixel
// methods", scikit-image's slic, Alibi's default) and quick shift
// (Vedaldi and Soatto, scikit-image's quickshift, AIX's default).
package superpixel

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
)

// MaxPixels bounds the pixels of one image (H × W).
const MaxPixels = 1 << 22

// Image is a picture as numbers: H rows of W pixels of C channels,
// row-major, Pix[(y*W+x)*C+c].
type Image struct {
	H, W, C int
	Pix     []float64
}

// Validate checks the sizes against each other and the bounds.
func (im Image) Validate() error {
	switch {
	case im.H < 1 || im.W < 1 || im.C < 1:
		return fmt.Errorf("image is %d×%d×%d; every size must be at least 1", im.H, im.W, im.C)
	case im.C > 4:
		return fmt.Errorf("image has %d channels, at most 4", im.C)
	case int64(im.H)*int64(im.W) > MaxPixels:
		return fmt.Errorf("image has %d×%d pixels, at most %d", im.H, im.W, MaxPixels)
	case len(im.Pix) != im.H*im.W*im.C:
		return fmt.Errorf("image %d×%d×%d holds %d values", im.H, im.W, im.C, len(im.Pix))
	}
	for _, v := range im.Pix {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("image holds a missing or infinite value")
		}
	}
	return nil
}

// Segments labels each pixel (row-major) with its superpixel, 0 to N-1,
// numbered in the order they are first met scanning rows.
type Segments struct {
	H, W   int
	Labels []int32
	N      int
}

// SLICConfig holds scikit-image slic's parameters; zero values take its
// defaults (Defaults).
type SLICConfig struct {
	NSegments   int     // superpixels sought (100)
	Compactness float64 // weight of space against colour (10)
	MaxIter     int     // k-means iterations (10)
	Sigma       float64 // Gaussian smoothing before segmenting, in pixels (0: none)
	// MinSizeFactor: a connected piece smaller than this share of the
	// mean superpixel size joins a neighbour (0.5).
	MinSizeFactor float64
	// NoLab keeps a 3-channel image's values; by default RGB (in [0, 1],
	// or [0, 255] when any value is over 1) is compared in CIELAB, as
	// scikit-image does.
	NoLab bool
}

// Defaults fills zero fields with scikit-image's defaults.
func (c SLICConfig) Defaults() SLICConfig {
	if c.NSegments == 0 {
		c.NSegments = 100
	}
	if c.Compactness == 0 {
		c.Compactness = 10
	}
	if c.MaxIter == 0 {
		c.MaxIter = 10
	}
	if c.MinSizeFactor == 0 {
		c.MinSizeFactor = 0.5
	}
	return c
}

// Validate names the first field out of range.
func (c SLICConfig) Validate() error {
	switch {
	case c.NSegments < 1 || c.NSegments > 100000:
		return fmt.Errorf("n_segments %d not in [1, 100000]", c.NSegments)
	case !(c.Compactness > 0) || math.IsInf(c.Compactness, 0):
		return fmt.Errorf("compactness %v must be positive", c.Compactness)
	case c.MaxIter < 1 || c.MaxIter > 1000:
		return fmt.Errorf("max_iter %d not in [1, 1000]", c.MaxIter)
	case c.Sigma < 0 || c.Sigma > 100 || math.IsNaN(c.Sigma):
		return fmt.Errorf("sigma %v not in [0, 100]", c.Sigma)
	case c.MinSizeFactor < 0 || c.MinSizeFactor > 1:
		return fmt.Errorf("min_size_factor %v not in [0, 1]", c.MinSizeFactor)
	}
	return nil
}

// center is one cluster: its position and mean colour.
type center struct {
	y, x  float64
	color []float64
}

// SLIC segments im: k-means over (colour, position) started from a
// regular grid of NSegments cells of side S, each pixel compared only
// with the centres within 2S, by d² = |colour difference|² +
// (Compactness/S)²·|position difference|²; then each superpixel is made
// one connected piece and pieces under MinSizeFactor of the mean size
// join the neighbour of nearest mean colour.
func SLIC(im Image, cfg SLICConfig) (*Segments, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := im.Validate(); err != nil {
		return nil, err
	}
	work := im
	if cfg.Sigma > 0 {
		work = blur(work, cfg.Sigma)
	}
	if work.C == 3 && !cfg.NoLab {
		work = toLab(work)
	}
	h, w, c := work.H, work.W, work.C
	n := min(cfg.NSegments, h*w)
	step := math.Sqrt(float64(h*w) / float64(n))
	ny := max(1, min(h, int(math.Round(float64(h)/step))))
	nx := max(1, min(w, int(math.Round(float64(w)/step))))
	sy, sx := float64(h)/float64(ny), float64(w)/float64(nx)
	s := max(sy, sx)
	centers := make([]center, 0, ny*nx)
	for i := range ny {
		for j := range nx {
			y, x := (float64(i)+0.5)*sy-0.5, (float64(j)+0.5)*sx-0.5 // cell centres in pixel indices
			p := (int(math.Round(y))*w + int(math.Round(x))) * c
			centers = append(centers, center{y: y, x: x, color: append([]float64(nil), work.Pix[p:p+c]...)})
		}
	}
	labels := make([]int32, h*w)
	dist := make([]float64, h*w)
	spatial := (cfg.Compactness / s) * (cfg.Compactness / s)
	sums := make([]float64, len(centers)*(c+2))
	counts := make([]int, len(centers))
	for it := range cfg.MaxIter {
		for i := range dist {
			dist[i] = math.Inf(1)
		}
		for k, ce := range centers {
			y0, y1 := max(0, int(ce.y-2*s)), min(h, int(ce.y+2*s)+1)
			x0, x1 := max(0, int(ce.x-2*s)), min(w, int(ce.x+2*s)+1)
			for y := y0; y < y1; y++ {
				dy := float64(y) - ce.y
				for x := x0; x < x1; x++ {
					dx := float64(x) - ce.x
					p := y*w + x
					d := spatial * (dy*dy + dx*dx)
					for ch, v := range work.Pix[p*c : p*c+c] {
						e := v - ce.color[ch]
						d += e * e
					}
					if d < dist[p] {
						dist[p], labels[p] = d, int32(k)
					}
				}
			}
		}
		clear(sums)
		clear(counts)
		for p, k := range labels {
			o := int(k) * (c + 2)
			sums[o] += float64(p / w)
			sums[o+1] += float64(p % w)
			for ch, v := range work.Pix[p*c : p*c+c] {
				sums[o+2+ch] += v
			}
			counts[k]++
		}
		moved := false
		for k := range centers {
			if counts[k] == 0 {
				continue
			}
			o := k * (c + 2)
			inv := 1 / float64(counts[k])
			y, x := sums[o]*inv, sums[o+1]*inv
			moved = moved || math.Abs(y-centers[k].y) > 1e-9 || math.Abs(x-centers[k].x) > 1e-9
			centers[k].y, centers[k].x = y, x
			for ch := range c {
				centers[k].color[ch] = sums[o+2+ch] * inv
			}
		}
		if !moved && it > 0 {
			break
		}
	}
	minSize := int(cfg.MinSizeFactor * float64(h*w) / float64(len(centers)))
	return connect(work, labels, minSize), nil
}

// connect splits every label into its 4-connected pieces, merges pieces
// smaller than minSize into the adjacent piece of nearest mean colour
// (smallest first, until none is left), and numbers the result in scan
// order.
func connect(im Image, labels []int32, minSize int) *Segments {
	h, w, c := im.H, im.W, im.C
	piece := make([]int32, h*w)
	for i := range piece {
		piece[i] = -1
	}
	var sizes []int
	var sums []float64
	queue := make([]int, 0, 64)
	for start := range piece {
		if piece[start] >= 0 {
			continue
		}
		id := int32(len(sizes))
		sizes = append(sizes, 0)
		sums = append(sums, make([]float64, c)...)
		piece[start] = id
		queue = append(queue[:0], start)
		for len(queue) > 0 {
			p := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			sizes[id]++
			for ch, v := range im.Pix[p*c : p*c+c] {
				sums[int(id)*c+ch] += v
			}
			y, x := p/w, p%w
			for _, q := range [4]int{p - w, p + w, p - 1, p + 1} {
				switch {
				case q == p-w && y == 0, q == p+w && y == h-1, q == p-1 && x == 0, q == p+1 && x == w-1:
					continue
				}
				if piece[q] < 0 && labels[q] == labels[p] {
					piece[q] = id
					queue = append(queue, q)
				}
			}
		}
	}
	// Pieces next to each other, from each pixel's right and lower
	// neighbours; merged lists may repeat a neighbour, which is harmless.
	adj := make([][]int32, len(sizes))
	link := func(a, b int32) {
		if a != b && (len(adj[a]) == 0 || adj[a][len(adj[a])-1] != b) {
			adj[a] = append(adj[a], b)
			adj[b] = append(adj[b], a)
		}
	}
	for p, id := range piece {
		if p%w < w-1 {
			link(id, piece[p+1])
		}
		if p/w < h-1 {
			link(id, piece[p+w])
		}
	}
	// parent maps merged pieces onto the piece they joined.
	parent := make([]int32, len(sizes))
	for i := range parent {
		parent[i] = int32(i)
	}
	find := func(i int32) int32 {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	small := &bySize{}
	for i := range sizes {
		if sizes[i] < minSize {
			heap.Push(small, pieceSize{int32(i), sizes[i]})
		}
	}
	for small.Len() > 0 {
		top := heap.Pop(small).(pieceSize)
		id := top.id
		if parent[id] != id || sizes[id] != top.size || sizes[id] >= minSize {
			continue // merged away, or grew since it was pushed
		}
		best, bestD := int32(-1), math.Inf(1)
		for _, nb := range adj[id] {
			nb = find(nb)
			if nb == id {
				continue
			}
			d := 0.0
			for ch := range c {
				e := sums[int(id)*c+ch]/float64(sizes[id]) - sums[int(nb)*c+ch]/float64(sizes[nb])
				d += e * e
			}
			if d < bestD || (d == bestD && nb < best) {
				best, bestD = nb, d
			}
		}
		if best < 0 {
			continue // the whole image is one piece
		}
		parent[id] = best
		sizes[best] += sizes[id]
		for ch := range c {
			sums[int(best)*c+ch] += sums[int(id)*c+ch]
		}
		adj[best] = append(adj[best], adj[id]...)
		adj[id] = nil
		if sizes[best] < minSize {
			heap.Push(small, pieceSize{best, sizes[best]})
		}
	}
	seg := &Segments{H: h, W: w, Labels: make([]int32, h*w)}
	number := map[int32]int32{}
	for p, id := range piece {
		root := find(id)
		k, ok := number[root]
		if !ok {
			k = int32(len(number))
			number[root] = k
		}
		seg.Labels[p] = k
	}
	seg.N = len(number)
	return seg
}

type pieceSize struct {
	id   int32
	size int
}

// bySize is a min-heap of pieces by size (ties: lower id first).
type bySize struct{ items []pieceSize }

func (b *bySize) Len() int { return len(b.items) }
func (b *bySize) Less(i, j int) bool {
	x, y := b.items[i], b.items[j]
	return x.size < y.size || (x.size == y.size && x.id < y.id)
}
func (b *bySize) Swap(i, j int) { b.items[i], b.items[j] = b.items[j], b.items[i] }
func (b *bySize) Push(x any)    { b.items = append(b.items, x.(pieceSize)) }
func (b *bySize) Pop() any {
	x := b.items[len(b.items)-1]
	b.items = b.items[:len(b.items)-1]
	return x
}

// blur smooths each channel with a Gaussian of standard deviation sigma
// (separable, truncated at 4 sigma, edges repeated).
func blur(im Image, sigma float64) Image {
	r := int(math.Ceil(4 * sigma))
	k := make([]float64, 2*r+1)
	sum := 0.0
	for i := range k {
		d := float64(i - r)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	h, w, c := im.H, im.W, im.C
	tmp := make([]float64, len(im.Pix))
	out := make([]float64, len(im.Pix))
	for y := range h {
		for x := range w {
			for ch := range c {
				v := 0.0
				for i, kv := range k {
					xx := min(w-1, max(0, x+i-r))
					v += kv * im.Pix[(y*w+xx)*c+ch]
				}
				tmp[(y*w+x)*c+ch] = v
			}
		}
	}
	for y := range h {
		for x := range w {
			for ch := range c {
				v := 0.0
				for i, kv := range k {
					yy := min(h-1, max(0, y+i-r))
					v += kv * tmp[(yy*w+x)*c+ch]
				}
				out[(y*w+x)*c+ch] = v
			}
		}
	}
	return Image{H: h, W: w, C: c, Pix: out}
}

// toLab converts sRGB (D65) to CIELAB. Values over 1 anywhere mean the
// image is in [0, 255].
func toLab(im Image) Image {
	scale := 1.0
	for _, v := range im.Pix {
		if v > 1 {
			scale = 1.0 / 255
			break
		}
	}
	lin := func(v float64) float64 {
		v *= scale
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	f := func(t float64) float64 {
		if t > 0.008856 {
			return math.Cbrt(t)
		}
		return 7.787*t + 16.0/116
	}
	out := make([]float64, len(im.Pix))
	for p := 0; p < len(im.Pix); p += 3 {
		r, g, b := lin(im.Pix[p]), lin(im.Pix[p+1]), lin(im.Pix[p+2])
		x := (0.412453*r + 0.357580*g + 0.180423*b) / 0.95047
		y := 0.212671*r + 0.715160*g + 0.072169*b
		z := (0.019334*r + 0.119193*g + 0.950227*b) / 1.08883
		fx, fy, fz := f(x), f(y), f(z)
		out[p] = 116*fy - 16
		out[p+1] = 500 * (fx - fy)
		out[p+2] = 200 * (fy - fz)
	}
	return Image{H: im.H, W: im.W, C: 3, Pix: out}
}

// Means returns im with every superpixel filled with its mean colour
// (what lime and Alibi put in place of a superpixel switched off when
// they are given no colour for it).
func Means(im Image, seg *Segments) Image {
	c := im.C
	sums := make([]float64, seg.N*c)
	counts := make([]int, seg.N)
	for p, k := range seg.Labels {
		counts[k]++
		for ch := range c {
			sums[int(k)*c+ch] += im.Pix[p*c+ch]
		}
	}
	out := make([]float64, len(im.Pix))
	for p, k := range seg.Labels {
		for ch := range c {
			out[p*c+ch] = sums[int(k)*c+ch] / float64(counts[k])
		}
	}
	return Image{H: im.H, W: im.W, C: c, Pix: out}
}
