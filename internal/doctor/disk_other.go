//go:build !unix

package doctor

import "errors"

func diskSpace(string) (free, total uint64, err error) {
	return 0, 0, errors.New("free disk space cannot be measured on this system")
}
