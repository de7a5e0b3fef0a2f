//go:build !race

package drift

const raceDivisor = 1
