//go:build race

package pickle

// raceEnabled shrinks the generated hostile streams under the race detector,
// which slows compression tenfold; the decoder fails at the same point.
const raceEnabled = true
