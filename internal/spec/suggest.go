package spec

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/skiffhq/skiff/api/v1alpha1"
)

// suggestion returns a " (did you mean ...?)" hint for an unknown field
// key among the known names of struct type t, or a hint on where the
// field belongs.
func suggestion(key string, names []string, t reflect.Type) string {
	if t == reflect.TypeOf(v1alpha1.Package{}) {
		for _, f := range structFields(reflect.TypeOf(v1alpha1.Metadata{})) {
			if f.name == key {
				return fmt.Sprintf(": move it under metadata (metadata.%s)", key)
			}
		}
	}
	if best := closest(key, names); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf(": known fields are %s", strings.Join(names, ", "))
}

// closest returns the name nearest to key by edit distance, ignoring case,
// or "" when none is near enough to be a likely typo.
func closest(key string, names []string) string {
	lk := strings.ToLower(key)
	best, bestDist := "", -1
	for _, n := range names {
		d := levenshtein(lk, strings.ToLower(n))
		if bestDist < 0 || d < bestDist {
			best, bestDist = n, d
		}
	}
	limit := 2
	if l := len([]rune(key)) / 3; l > limit {
		limit = l
	}
	if bestDist >= 0 && bestDist <= limit {
		return best
	}
	// A known name inside the key ("helmCharts", "chartList") is a likely
	// intent too.
	for _, n := range names {
		if len(n) >= 4 && strings.Contains(lk, strings.ToLower(n)) {
			return n
		}
	}
	return ""
}

// levenshtein returns the edit distance between a and b.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
