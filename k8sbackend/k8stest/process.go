package k8stest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const (
	// readyTimeout bounds the wait for etcd and for kube-apiserver to become
	// ready. It is generous because other test binaries share the machine's
	// cores during the wait.
	readyTimeout = 3 * time.Minute
	pollInterval = 100 * time.Millisecond
	// stopGrace is how long a component may take to exit after SIGTERM
	// before it gets SIGKILL.
	stopGrace = 10 * time.Second
	// logTailLines is how much of a component's log an error message quotes.
	logTailLines = 20
)

// errPortInUse reports that a component exited because another process took
// one of its ports between the pick and the bind. Start then retries with
// new ports.
var errPortInUse = errors.New("address already in use")

// process is one child process (etcd or kube-apiserver) whose stdout and
// stderr go to a log file.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	// done is closed once the process has exited and waitErr is set.
	done    chan struct{}
	waitErr error
}

func startProcess(name, logPath, bin string, args, env []string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = env
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}

	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls check until it returns nil, the process exits, or
// readyTimeout passes. what describes the check for error messages.
func (p *process) waitReady(what string, check func() error) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		lastErr := check()
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.exitError(what)
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not become ready (%s) within %s, last error: %v; log %s:\n%s",
				p.name, what, readyTimeout, lastErr, p.logPath, p.logTail())
		}
	}
}

// exitError describes an exit before the process became ready, and wraps
// errPortInUse when the log shows a lost race for a port.
func (p *process) exitError(what string) error {
	tail := p.logTail()
	err := fmt.Errorf("%s exited (%v) before it became ready (%s); log %s:\n%s", p.name, p.waitErr, what, p.logPath, tail)
	if strings.Contains(tail, errPortInUse.Error()) {
		return fmt.Errorf("%w: %w", errPortInUse, err)
	}
	return err
}

// stop sends SIGTERM to the process's PID, and SIGKILL if it is still
// running after stopGrace.
func (p *process) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopGrace):
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// logTail returns the last logTailLines lines of the log file.
func (p *process) logTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
