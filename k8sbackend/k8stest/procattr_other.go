//go:build !linux

package k8stest

import "syscall"

// childProcAttr returns nil because only Linux can tie a child's lifetime to
// its parent. Without Stop, the children outlive the test binary.
func childProcAttr() *syscall.SysProcAttr {
	return nil
}
