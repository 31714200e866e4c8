//go:build linux

package catalog

import (
	"fmt"
	"os"
	"syscall"
)

// lockManifest takes an exclusive lock on dir for a read-modify-write of
// its manifest (import, pull and rm in several processes at once),
// released by the returned func. The lock is on the directory itself, so
// it leaves no file behind.
func lockManifest(dir string) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock the manifest: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock the manifest: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
