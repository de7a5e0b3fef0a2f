package fairness

import "math"

// Consistency is AIF360's consistency(n_neighbors=k):
//
//	1 - (1/n) Σ_i |y_i - mean(y_j for j in kNN(x_i))|
//
// where kNN(x_i) are the k rows nearest to x_i in Euclidean distance over
// all features, x_i itself included (sklearn's kneighbors on the fitted
// data), and y are the raw label values. Ties in distance go to the lower
// row index; sklearn's ball tree leaves their order unspecified, so data
// with duplicate rows may differ from AIF360 in the last digits or more.
// With fewer than k rows all rows are neighbours (AIF360 raises instead).
//
// It is brute force, O(n²·d) time and O(k) extra memory per row: the bias
// detector's requests are bounded by the body limit.
func Consistency(rows [][]float64, labels []float64, k int) float64 {
	n := len(rows)
	if n == 0 {
		return math.NaN()
	}
	k = min(k, n)
	// best holds the indices of the k nearest so far, nearest first;
	// dist their squared distances.
	best := make([]int, 0, k)
	dist := make([]float64, 0, k)
	var sum float64
	for i, xi := range rows {
		best, dist = best[:0], dist[:0]
		for j, xj := range rows {
			// Stop summing once the row cannot beat the k-th nearest.
			worst := math.Inf(1)
			if len(best) == k {
				worst = dist[k-1]
			}
			var d float64
			for f := range xi {
				t := xi[f] - xj[f]
				if d += t * t; d >= worst {
					break
				}
			}
			if d >= worst {
				continue
			}
			// Insert after every entry at distance <= d, so a lower index
			// wins a tie.
			p := len(best)
			for p > 0 && dist[p-1] > d {
				p--
			}
			if len(best) < k {
				best, dist = append(best, 0), append(dist, 0)
			}
			copy(best[p+1:], best[p:len(best)-1])
			copy(dist[p+1:], dist[p:len(dist)-1])
			best[p], dist[p] = j, d
		}
		var mean float64
		for _, j := range best {
			mean += labels[j]
		}
		mean /= float64(k)
		sum += math.Abs(labels[i] - mean)
	}
	return 1 - sum/float64(n)
}
