package install

import (
	"errors"
	"testing"
)

func TestCheckDowngrade(t *testing.T) {
	tests := []struct {
		from, to string
		refused  bool
	}{
		{"1.0.0", "1.1.0", false},
		{"1.1.0", "1.1.0", false},
		{"1.1.0", "1.0.0", true},
		{"2.0.0", "2.0.0-rc.1", true},
		{"1.0.0-rc.1", "1.0.0", false},
		{"1.10.0", "1.9.9", true},
		{"", "1.0.0", false},
	}
	for _, tt := range tests {
		err := checkDowngrade(tt.from, tt.to)
		if refused := errors.Is(err, ErrDowngrade); refused != tt.refused {
			t.Errorf("%s -> %s: error %v, want refused=%v", tt.from, tt.to, err, tt.refused)
		}
	}
}
