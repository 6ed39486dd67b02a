//go:build race

package bundle

// raceEnabled: the race detector drops sync.Pool items at random, so
// allocation counts are not meaningful under -race.
const raceEnabled = true
