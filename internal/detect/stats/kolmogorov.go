package stats

import "math"

// The Kolmogorov distribution of D_n = sup |F_n - F| for a sample of n, as
// SciPy's kstwo evaluates it (Simard and L'Ecuyer 2011): closed forms at
// the ends of the support, Durbin's matrix method (Marsaglia, Tsang and
// Wang) or Pomeranz's recursion in the body, the one-sided Smirnov sum in
// the upper tail and the Pelz–Good expansion for large n. The choice of
// method at each (n, x) follows SciPy's so that p-values agree to ~1e-12.

const (
	scale128 = 0x1p128  // rescaling step that keeps intermediate values in range
	small128 = 0x1p-128 // its inverse
)

// stirling holds the coefficients of the Stirling series for
// log(n!/n^n), highest power first.
var stirling = [...]float64{
	-2.955065359477124183e-2, 6.4102564102564102564e-3,
	-1.9175269175269175269e-3, 8.4175084175084175084e-4,
	-5.952380952380952381e-4, 7.9365079365079365079e-4,
	-2.7777777777777777778e-3, 8.3333333333333333333e-2,
}

func logNFactorialOverNPowN(n int) float64 {
	fn := float64(n)
	rn := 1 / fn
	z := rn / fn
	var poly float64
	for _, c := range stirling {
		poly = poly*z + c
	}
	return math.Log(fn)/2 - fn + math.Log(2*math.Pi)/2 + rn*poly
}

// KolmogorovSF returns P(D_n >= x) (the survival function of the
// two-sided one-sample KS statistic for a sample of n).
func KolmogorovSF(n int, x float64) float64 {
	return clip01(kolmogorov(n, x, false))
}

// KolmogorovCDF returns P(D_n <= x).
func KolmogorovCDF(n int, x float64) float64 {
	return clip01(kolmogorov(n, x, true))
}

func pick(cdf bool, c, s float64) float64 {
	if cdf {
		return c
	}
	return s
}

func kolmogorov(n int, x float64, cdf bool) float64 {
	switch {
	case n <= 0 || math.IsNaN(x):
		return math.NaN()
	case x >= 1:
		return pick(cdf, 1, 0)
	case x <= 0:
		return pick(cdf, 0, 1)
	}
	fn := float64(n)
	t := fn * x
	if t <= 1 { // Ruben–Gambino: 1/(2n) <= x <= 1/n
		if t <= 0.5 {
			return pick(cdf, 0, 1)
		}
		var p float64
		if n <= 140 {
			p = 1
			for i := 1; i <= n; i++ {
				p *= float64(i) * (1 / fn) * (2*t - 1)
			}
		} else {
			p = math.Exp(logNFactorialOverNPowN(n) + fn*math.Log(2*t-1))
		}
		return pick(cdf, p, 1-p)
	}
	if t >= fn-1 { // Ruben–Gambino
		p := 2 * math.Pow(1-x, fn)
		return pick(cdf, 1-p, p)
	}
	if x >= 0.5 { // exact: twice the one-sided tail
		p := 2 * Smirnov(n, x)
		return pick(cdf, 1-p, p)
	}
	nx2 := t * x
	if n <= 140 {
		var c float64
		switch {
		case nx2 <= 0.754693:
			c = durbinMatrix(n, x)
		case nx2 <= 4:
			c = pomeranz(n, x)
		default:
			p := 2 * Smirnov(n, x)
			return pick(cdf, 1-p, p)
		}
		return pick(cdf, c, 1-c)
	}
	if !cdf {
		if nx2 >= 370 {
			return 0
		}
		if nx2 >= 2.2 {
			return 2 * Smirnov(n, x)
		}
	}
	var c float64
	switch {
	case nx2 >= 18:
		c = 1
	case n <= 100000 && fn*math.Pow(x, 1.5) <= 1.4:
		c = durbinMatrix(n, x)
	default:
		c = pelzGood(n, x)
	}
	return pick(cdf, c, 1-c)
}

// Smirnov returns the one-sided tail P(D+_n >= e) by the Birnbaum–Tingey
// sum, whose terms are all positive; each term is formed in log space so
// that large n neither overflows the binomial nor underflows the powers.
func Smirnov(n int, e float64) float64 {
	switch {
	case n <= 0 || !(e >= 0 && e <= 1):
		return math.NaN()
	case e == 0:
		return 1
	case e == 1:
		return 0
	}
	fn := float64(n)
	nn := int(math.Floor(fn * (1 - e)))
	lgn1, _ := math.Lgamma(fn + 1)
	var p float64
	for v := 0; v <= nn; v++ {
		fv := float64(v)
		evn := e + fv/fn
		omevn := 1 - evn
		if omevn <= 0 {
			continue // the term carries (1-e-v/n)^(n-v) = 0
		}
		lv, _ := math.Lgamma(fv + 1)
		lnv, _ := math.Lgamma(fn - fv + 1)
		lt := lgn1 - lv - lnv + (fv-1)*math.Log(evn) + (fn-fv)*math.Log1p(-evn)
		if lt > -745 {
			p += math.Exp(lt)
		}
	}
	return p * e
}

// durbinMatrix returns P(D_n <= d) as the (k,k) entry of H^n scaled by
// n!/n^n (Durbin 1968; Marsaglia, Tsang and Wang 2003), with explicit
// binary exponents carried beside the matrix so that neither H^n nor the
// final scaling overflows.
func durbinMatrix(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1
	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] = (1 - math.Pow(h, float64(j))) * fac
	}
	tt := math.Pow(math.Max(2*h-1, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1 + tt) * fac

	H := newMat(m)
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H.set(r, i, w[r-i+1])
		}
	}
	for r := range m {
		H.set(r, 0, v[r])
	}
	for c := range m {
		H.set(m-1, c, v[m-1-c])
	}
	P := identity(m)
	tmp := newMat(m)
	expnt, hexpnt := 0, 0
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			mul(tmp, P, H)
			P, tmp = tmp, P
			expnt += hexpnt
		}
		mul(tmp, H, H)
		H, tmp = tmp, H
		hexpnt *= 2
		if math.Abs(H.at(k-1, k-1)) > scale128 {
			for i := range H.v {
				H.v[i] /= scale128
			}
			hexpnt += 128
		}
	}
	p := P.at(k-1, k-1)
	fn := float64(n)
	for i := 1; i <= n; i++ {
		p = float64(i) * p / fn
		if math.Abs(p) < small128 {
			p *= scale128
			expnt -= 128
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clip01(p)
}

// pomeranz returns P(D_n <= x) by Pomeranz's recursion (1974), as a
// sequence of truncated convolutions with powers of g/n, 2g/n and
// (1-2g)/n, rescaled by powers of two when the row underflows.
func pomeranz(n int, x float64) float64 {
	t := float64(n) * x
	ll := int(math.Floor(t))
	f := t - float64(ll)
	g := math.Min(f, 1-f)
	ceilf, roundf := 0, 0
	if f > 0 {
		ceilf = 1
	}
	if f > 0.5 {
		roundf = 1
	}
	npw := 2 * (ll + 1)
	gp, twog, onem2g := make([]float64, npw), make([]float64, npw), make([]float64, npw)
	gp[0], twog[0], onem2g[0] = 1, 1, 1
	fn := float64(n)
	for m := 1; m < npw; m++ {
		fm := float64(m)
		gp[m] = gp[m-1] * (g / fn) / fm
		twog[m] = twog[m-1] * (2 * g / fn) / fm
		onem2g[m] = onem2g[m-1] * ((1 - 2*g) / fn) / fm
	}
	v0, v1 := make([]float64, npw), make([]float64, npw)
	v1[0] = 1
	v0s, v1s := 0, 0
	expnt := 0
	j1, j2 := pomeranzJ(0, n, ll, ceilf, roundf)
	conv := make([]float64, 2*npw)
	for i := 1; i < 2*n+2; i++ {
		k1 := j1
		v0, v1 = v1, v0
		v0s, v1s = v1s, v0s
		clear(v1)
		j1, j2 = pomeranzJ(i, n, ll, ceilf, roundf)
		pw := onem2g
		switch {
		case i == 1 || i == 2*n+1:
			pw = gp
		case i%2 == 1:
			pw = twog
		}
		ln2 := j2 - k1 + 1
		if ln2 <= 0 {
			continue
		}
		lo := k1 - v0s
		a := v0[lo:min(lo+ln2, len(v0))]
		b := pw[:min(ln2, len(pw))]
		c := conv[:len(a)+len(b)-1]
		clear(c)
		for p, av := range a {
			for q, bv := range b {
				c[p+q] += av * bv
			}
		}
		start, cl := j1-k1, j2-j1+1
		copy(v1[:cl], c[start:start+cl])
		mx := math.Inf(-1)
		for _, e := range v1 {
			mx = math.Max(mx, e)
		}
		if mx > 0 && mx < small128 {
			for q := range v1 {
				v1[q] *= scale128
			}
			expnt -= 128
		}
		v1s = v0s + j1 - k1
	}
	ans := v1[n-v1s]
	for m := 1; m <= n; m++ {
		if math.Abs(ans) > scale128 {
			ans *= small128
			expnt += 128
		}
		ans *= float64(m)
	}
	if expnt != 0 {
		ans = math.Ldexp(ans, expnt)
	}
	return clip01(ans)
}

func pomeranzJ(i, n, ll, ceilf, roundf int) (int, int) {
	var j1, j2 int
	if i == 0 {
		j1, j2 = -ll-ceilf-1, ll+ceilf-1
	} else {
		half, odd := (i+1)/2, (i+1)%2
		switch {
		case odd == 0 && half == n+1:
			j1, j2 = n-ll-ceilf-1, n+ll+ceilf-1
		case odd == 0:
			j1, j2 = half-1-ll-roundf-1, half+ll-1+ceilf-1
		default:
			j1, j2 = half-1-ll-1, half+ll+roundf-1
		}
	}
	return max(j1+2, 0), min(j2, n)
}

// pelzGood returns P(D_n <= x) from the Li-Chien/Korolyuk expansion in
// 1/sqrt(n), each term rewritten with Jacobi theta identities (Pelz and
// Good 1976) so that it converges quickly for small sqrt(n)·x.
func pelzGood(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	const (
		pi2 = math.Pi * math.Pi
		pi4 = pi2 * pi2
		pi6 = pi4 * pi2
	)
	z := math.Sqrt(float64(n)) * x
	z2, z3, z4, z6 := z*z, z*z*z, z*z*z*z, math.Pow(z, 6)
	qlog := -pi2 / 8 / z2
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)
	k1a, k1b := -z2, pi2/4
	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * pi2 / 4
	k2c := pi4 * (1 - 2*z2) / 16
	k3d := pi6 * (5 - 30*z2) / 64
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*math.Pow(z, 8)
	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		m2 := m * m
		m4 := m2 * m2
		m6 := m4 * m2
		qp := math.Pow(q, float64(8*k))
		c := [4]float64{1, k1a + k1b*m2, k2a + k2b*m2 + k2c*m4, k3a + k3b*m2 + k3c*m4 + k3d*m6}
		for i := range K {
			K[i] = K[i]*qp + c[i]
		}
	}
	den := [4]float64{z, 6 * z4, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	sqrt2pi := math.Sqrt(2 * math.Pi)
	for i := range K {
		K[i] = K[i] * q * sqrt2pi / den[i]
	}
	q = math.Exp(-pi2 / 2 / z2)
	sqrt3z := math.Sqrt(3) * z
	var k2extra, k3extra float64
	for k := maxk; k > 0; k-- {
		fk := float64(k)
		k2 := fk * fk
		qk := math.Pow(q, k2)
		kpi := math.Pi * fk
		k2extra += k2 * qk
		k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qk
	}
	K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3)
	K[3] += k3extra * pi2 * sqrt2pi / (216 * z6)
	var sum float64
	for i := range K {
		sum += K[i] / math.Pow(float64(n), float64(i)/2)
	}
	return sum
}

// mat is a dense square matrix, row-major.
type mat struct {
	n int
	v []float64
}

func newMat(n int) *mat                { return &mat{n: n, v: make([]float64, n*n)} }
func (a *mat) at(r, c int) float64     { return a.v[r*a.n+c] }
func (a *mat) set(r, c int, x float64) { a.v[r*a.n+c] = x }

func identity(n int) *mat {
	m := newMat(n)
	for i := range n {
		m.set(i, i, 1)
	}
	return m
}

// mul sets dst = a·b; dst must not alias a or b.
func mul(dst, a, b *mat) {
	n := a.n
	clear(dst.v)
	for i := range n {
		row := dst.v[i*n : (i+1)*n]
		for k := range n {
			aik := a.v[i*n+k]
			if aik == 0 {
				continue
			}
			brow := b.v[k*n : (k+1)*n]
			for j, bv := range brow {
				row[j] += aik * bv
			}
		}
	}
}
