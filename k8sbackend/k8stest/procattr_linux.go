package k8stest

import "syscall"

// childProcAttr makes the kernel kill etcd and kube-apiserver when the test
// binary exits without calling Stop, for example when `go test -timeout`
// ends it.
//
// NOTE: Linux sends the signal when the forking thread exits, not the
// process. The Go runtime keeps its threads except those of goroutines that
// end while locked with runtime.LockOSThread, so do not call Start from such
// a goroutine.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
