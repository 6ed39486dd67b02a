package install

import (
	"fmt"

	"github.com/skiffhq/skiff/internal/bundle"
	"github.com/skiffhq/skiff/internal/chart"
	"github.com/skiffhq/skiff/internal/images"
)

// setImageValues sets the chart values that c maps to images (imageValues
// in skiff.yaml) to their relocated, digest-pinned references in m, before
// the chart archive data is rendered with vals.
func setImageValues(c bundle.Chart, data []byte, vals map[string]any, m images.Map) error {
	if len(c.ImageValues) == 0 {
		return nil
	}
	defaults, err := chart.Defaults(data)
	if err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	if err := images.SetValues(vals, defaults, c.ImageValues, m); err != nil {
		return fmt.Errorf("chart %s: %w", c.Name, err)
	}
	return nil
}
