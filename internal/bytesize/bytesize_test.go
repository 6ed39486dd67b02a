package bytesize

import (
	"fmt"
	"math"
	"testing"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1 << 20, "1.0 MiB"},
		{3435973837, "3.2 GiB"},
		{1 << 40, "1.0 TiB"},
		{math.MaxInt64, "8.0 EiB"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			if got := Format(tt.n); got != tt.want {
				t.Errorf("Format(%d): got %q, want %q", tt.n, got, tt.want)
			}
		})
	}
}

func ExampleFormat() {
	fmt.Println(Format(1536))
	// Output: 1.5 KiB
}
