//go:build e2e

package staging

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// controllerProcess is a `ferry controller` process that shares its
// database, installation name and leader Lease with a `ferry api`. A test
// can SIGKILL it and start it again while the API keeps serving.
type controllerProcess struct {
	bin     string
	config  string
	env     []string
	logPath string
	// leaseNamespace and leaseName name the leader Lease, which is the
	// installation's own.
	leaseNamespace string
	leaseName      string

	cmd     *exec.Cmd
	logFile *os.File
	// exited is closed when cmd has exited, and waitErr is then its exit
	// error.
	exited  chan struct{}
	waitErr error
}

// startSplitFerry runs Ferry as two processes: `ferry api`, which the
// returned ferry drives, and `ferry controller`. Both use the same
// configuration and environment as startFerry's `ferry serve`.
func startSplitFerry(t *testing.T, env *envtest.Environment) (*ferry, *controllerProcess) {
	t.Helper()
	f := newFerry(t, env)
	f.role = "api"
	c := &controllerProcess{
		bin:            f.bin,
		config:         f.config,
		env:            f.env,
		logPath:        filepath.Join(filepath.Dir(f.logPath), "controller.log"),
		leaseNamespace: envValue(f.env, "POD_NAMESPACE"),
		leaseName:      k8sbackend.ControllerLeaseName(envValue(f.env, "FERRY_INSTALLATION")),
	}
	// Cleanups run last-registered first, so the controller stops before
	// the API and before its Lease namespace is deleted.
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			c.saveLog(t)
		}
	})
	f.start(t)
	c.start(t)
	return f, c
}

// start runs `ferry controller`, appending to its log. It does not wait
// for the controller to lead: after a SIGKILL the new process waits until
// the old one's Lease expires.
func (c *controllerProcess) start(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "controller", "--config", c.config)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		c.waitErr = cmd.Wait()
		close(exited)
	}()
	c.cmd, c.logFile, c.exited = cmd, logFile, exited
}

// kill sends SIGKILL to the running controller and reaps it. The
// controller gets no chance to release its Lease or finish a reconcile.
// kill fails t when the controller had already exited by itself.
func (c *controllerProcess) kill(t *testing.T) {
	t.Helper()
	select {
	case <-c.exited:
		t.Fatalf("ferry controller (pid %d) exited before it was killed: %v", c.cmd.Process.Pid, c.waitErr)
	default:
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill ferry controller (pid %d): %v", c.cmd.Process.Pid, err)
	}
	<-c.exited
	c.logFile.Close()
	c.cmd = nil
}

// running reports whether the controller process has been started and
// has not exited, with its exit error when it has.
func (c *controllerProcess) running() (bool, error) {
	if c.cmd == nil {
		return false, nil
	}
	select {
	case <-c.exited:
		return false, c.waitErr
	default:
		return true, nil
	}
}

// awaitNewLeader waits until a replica other than previous holds the
// controller's Lease and returns its identity. Pass "" to wait for any
// holder. A SIGKILLed controller stays the holder until its Lease expires.
func (c *controllerProcess) awaitNewLeader(t *testing.T, env *envtest.Environment, previous string) string {
	t.Helper()
	var holder string
	envtest.WaitFor(t, startTimeout, "a new holder of Lease "+c.leaseNamespace+"/"+c.leaseName,
		func(ctx context.Context) (bool, string) {
			lease, err := env.Kube.CoordinationV1().Leases(c.leaseNamespace).Get(ctx, c.leaseName, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, "no Lease yet"
			}
			if err != nil {
				return false, err.Error()
			}
			holder = ""
			if lease.Spec.HolderIdentity != nil {
				holder = *lease.Spec.HolderIdentity
			}
			return holder != "" && holder != previous, "holder " + holder
		})
	return holder
}

// stop interrupts the running controller, if any, and waits for it.
func (c *controllerProcess) stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(os.Interrupt)
	<-c.exited
	c.logFile.Close()
	c.cmd = nil
}

// saveLog copies the controller's log, which covers every restart, into
// the test's artifact directory and logs its last lines.
func (c *controllerProcess) saveLog(t *testing.T) {
	data, err := os.ReadFile(c.logPath)
	if err != nil {
		t.Logf("read the controller log: %v", err)
		return
	}
	saved := filepath.Join(t.ArtifactDir(), "ferry-controller.log")
	if err := os.WriteFile(saved, data, 0o600); err != nil {
		t.Logf("save the controller log: %v", err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	const tail = 200
	if len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	t.Logf("last %d lines of the controller log (all of it in %s):\n%s", len(lines), saved, bytes.Join(lines, []byte("\n")))
}

// envValue returns the value of key in environ, a list of key=value
// entries, or "" when it is missing.
func envValue(environ []string, key string) string {
	for _, entry := range environ {
		if value, ok := strings.CutPrefix(entry, key+"="); ok {
			return value
		}
	}
	return ""
}
