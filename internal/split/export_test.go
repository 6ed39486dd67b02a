package split

// SetMaxStripe sets the largest stripe and returns a func restoring it.
func SetMaxStripe(n int) func() {
	old := maxStripe
	maxStripe = n
	return func() { maxStripe = old }
}
