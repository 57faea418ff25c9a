package k8stest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Environment variables that locate the binaries. The cache layout and the
// defaults match hack/k8s-build.sh, which builds kube-apiserver into
// $FERRY_CACHE_DIR/kubernetes-$FERRY_K8S_VERSION/bin.
const (
	envKubeBinDir = "FERRY_KUBE_BIN_DIR"
	envCacheDir   = "FERRY_CACHE_DIR"
	envK8sVersion = "FERRY_K8S_VERSION"
	envEtcdBin    = "FERRY_ETCD_BIN"

	defaultK8sVersion = "v1.37.2"
)

// ErrBinariesNotFound reports that FERRY_KUBE_BIN_DIR is unset and the build
// cache has no kube-apiserver. Only this error lets the tests skip, and only
// when FERRY_K8STEST_OPTIONAL=1.
var ErrBinariesNotFound = errors.New("kube-apiserver binary not found")

type binaries struct {
	kubeAPIServer string
	etcd          string
	// etcdNoFsync is whether this etcd accepts --unsafe-no-fsync. The etcd
	// 3.4.23 of Debian 12's etcd-server package does not.
	etcdNoFsync bool
}

func findBinaries() (binaries, error) {
	apiserver, err := findKubeAPIServer()
	if err != nil {
		return binaries{}, err
	}
	etcd, err := findEtcd()
	if err != nil {
		return binaries{}, err
	}
	return binaries{kubeAPIServer: apiserver, etcd: etcd, etcdNoFsync: etcdSupportsNoFsync(etcd)}, nil
}

// findKubeAPIServer looks in FERRY_KUBE_BIN_DIR when it is set, and in the
// build cache otherwise. A FERRY_KUBE_BIN_DIR without kube-apiserver is a
// configuration error, never a reason to skip.
func findKubeAPIServer() (string, error) {
	if dir := os.Getenv(envKubeBinDir); dir != "" {
		path := filepath.Join(dir, "kube-apiserver")
		if !isExecutable(path) {
			return "", fmt.Errorf("%s=%s has no executable kube-apiserver: build it with `bash hack/k8s-build.sh` and point %s at the bin directory it prints", envKubeBinDir, dir, envKubeBinDir)
		}
		return path, nil
	}

	cacheBin, err := cacheBinDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(cacheBin, "kube-apiserver")
	if !isExecutable(path) {
		return "", fmt.Errorf("%w: %s is unset and %s does not exist; build it with `bash hack/k8s-build.sh`",
			ErrBinariesNotFound, envKubeBinDir, path)
	}
	return path, nil
}

func cacheBinDir() (string, error) {
	cache := os.Getenv(envCacheDir)
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locate the build cache: %w; set %s or %s", err, envCacheDir, envKubeBinDir)
		}
		cache = filepath.Join(home, ".cache", "ferry")
	}
	version := os.Getenv(envK8sVersion)
	if version == "" {
		version = defaultK8sVersion
	}
	return filepath.Join(cache, "kubernetes-"+version, "bin"), nil
}

// findEtcd uses FERRY_ETCD_BIN, then etcd on PATH (Debian's etcd-server
// package, installed by hack/setup.sh).
func findEtcd() (string, error) {
	if path := os.Getenv(envEtcdBin); path != "" {
		if !isExecutable(path) {
			return "", fmt.Errorf("%s=%s is not an executable file", envEtcdBin, path)
		}
		return path, nil
	}
	path, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcd not found on PATH: install etcd-server (bash hack/setup.sh) or set %s", envEtcdBin)
	}
	return path, nil
}

func etcdSupportsNoFsync(etcd string) bool {
	// etcd --help exits non-zero on some versions; only its text matters.
	out, _ := exec.Command(etcd, "--help").CombinedOutput()
	return strings.Contains(string(out), "--unsafe-no-fsync")
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}
