//go:build !unix

package appbits

// noFollow is zero where the platform has no O_NOFOLLOW. O_EXCL still
// rejects an existing symlink.
const noFollow = 0
