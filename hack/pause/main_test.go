package main

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary run pause's main instead of the tests, so
// the signal tests exercise the real process without a separate build.
const runMainEnv = "FERRY_PAUSE_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startPause starts pause as a child process and returns once it has
// registered its signal handlers, which it reports with its PID 1 warning.
func startPause(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reader := bufio.NewReader(stderr)
	line, err := reader.ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("read pause's first stderr line: %v", err)
	}
	if !strings.Contains(line, "not running as PID 1") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("pause's first stderr line = %q, want the PID 1 warning", line)
	}
	go func() {
		// Drain the rest so pause never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, reader)
	}()
	return cmd
}

func TestExitsZeroOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := startPause(t)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("pause exited with %v after %v, want status 0", err, sig)
			}
		})
	}
}

func TestRejectsArguments(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--unknown")
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	err := cmd.Run()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Errorf("pause --unknown returned %v, want exit status 1", err)
	}
}

func TestReapChildren(t *testing.T) {
	pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}

	// The child is a zombie once it has exited and no process has waited for it.
	deadline := time.Now().Add(time.Minute)
	for processState(pid) != "Z" {
		if time.Now().After(deadline) {
			t.Fatalf("child %d did not become a zombie; state %q", pid, processState(pid))
		}
		time.Sleep(10 * time.Millisecond)
	}

	reapChildren()
	if state := processState(pid); state != "" {
		t.Errorf("child %d still exists in state %q after reapChildren", pid, state)
	}
}

// processState returns the state letter from /proc/PID/stat, or "" when the
// process does not exist.
func processState(pid int) string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// The command name in parentheses may contain spaces, so the state is
	// read after the last ')'.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}
