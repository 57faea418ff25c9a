// Command pause is the process of the local environment's pod sandbox (pause)
// image. It keeps the pod's namespaces alive and does nothing else: it reaps
// the children that are re-parented to it when the pod shares one PID
// namespace, and it exits with status 0 on SIGINT or SIGTERM.
//
// Build it with CGO_ENABLED=0 so the image needs no libc.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is what -v prints. pause.sh sets it to the image tag.
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Printf("pause (ferry) %s\n", version)
		return
	}
	if len(os.Args) > 1 {
		fmt.Fprintf(os.Stderr, "pause: unexpected arguments %q; the only flag is -v\n", os.Args[1:])
		os.Exit(1)
	}

	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	// This line comes after signal.Notify, so once it is written SIGTERM
	// ends the process with status 0. The tests wait for it.
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pause: warning: not running as PID 1, so orphaned processes of the pod are not reparented to it")
	}
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reapChildren()
			continue
		}
		fmt.Fprintf(os.Stderr, "pause: exiting on %v\n", sig)
		os.Exit(0)
	}
}

// reapChildren collects the exit status of every child that has exited, so
// none stays a zombie. Several SIGCHLDs may arrive as one, so it loops until
// no exited child is left.
func reapChildren() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
	}
}
