//go:build unix

package appbits

import "syscall"

// noFollow makes opening the final path component fail if it is a symlink.
const noFollow = syscall.O_NOFOLLOW
