//go:build race

package drift

// The race detector slows the numeric loops about tenfold; the power tests
// run fewer windows under it (their bounds still hold).
const raceDivisor = 4
