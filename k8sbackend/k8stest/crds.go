package k8stest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

const (
	envGatewayCRDsDir = "FERRY_GATEWAY_CRDS_DIR"
	fieldManager      = "ferry-k8stest"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crd is one CustomResourceDefinition read from a file, with the fields the
// readiness wait needs.
type crd struct {
	file           string
	object         *unstructured.Unstructured
	group          string
	plural         string
	servedVersions []string
}

// InstallCRDs applies every CustomResourceDefinition in the .yaml, .yml and
// .json files of dir by server-side apply. Files may hold several YAML
// documents, and a document of any other kind is an error. It then waits
// until each CRD is Established and discovery lists it in every served
// version, so clients can use the new kinds at once. Installing a directory
// that this server has already installed does nothing.
func (s *Server) InstallCRDs(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("resolve CRD directory %s: %w", dir, err)
	}
	s.crdMu.Lock()
	defer s.crdMu.Unlock()
	if s.installedCRDs[abs] {
		return nil
	}

	crds, err := readCRDs(abs)
	if err != nil {
		return err
	}
	ctx, cancel := waitContext()
	defer cancel()
	for _, c := range crds {
		_, err := s.dynamic.Resource(crdResource).Apply(ctx, c.object.GetName(), c.object, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
		if err != nil {
			return fmt.Errorf("apply CustomResourceDefinition %s from %s: %w", c.object.GetName(), c.file, err)
		}
	}
	for _, c := range crds {
		if err := s.waitCRDServed(ctx, c); err != nil {
			return err
		}
	}
	s.installedCRDs[abs] = true
	return nil
}

// InstallGatewayCRDs installs the Gateway API CRDs from GatewayCRDDir.
func (s *Server) InstallGatewayCRDs() error {
	dir, err := GatewayCRDDir()
	if err != nil {
		return err
	}
	return s.InstallCRDs(dir)
}

// GatewayCRDDir returns the directory of the Gateway API CRDs that the local
// environment installs: FERRY_GATEWAY_CRDS_DIR when set, otherwise the path
// that hack/build/gateway-crds.sh prints. That script reuses its cached copy
// or collects the CRDs from the sigs.k8s.io/gateway-api module.
func GatewayCRDDir() (string, error) {
	if dir := os.Getenv(envGatewayCRDsDir); dir != "" {
		return dir, nil
	}
	script, err := repoFile("hack/build/gateway-crds.sh")
	if err != nil {
		return "", fmt.Errorf("%w; set %s to the Gateway API CRD directory", err, envGatewayCRDsDir)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", script)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s failed: %w\n%s", script, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s printed no directory", script)
	}
	return dir, nil
}

// repoFile locates a file of this repository from this source file's path,
// which go test compiles in unless -trimpath is set.
func repoFile(rel string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok || !filepath.IsAbs(self) {
		return "", errors.New("cannot locate the repository from the k8stest source path")
	}
	path := filepath.Join(filepath.Dir(self), "..", "..", filepath.FromSlash(rel))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("locate %s: %w", rel, err)
	}
	return path, nil
}

func readCRDs(dir string) ([]crd, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read CRD directory: %w", err)
	}
	var crds []crd
	for _, entry := range entries {
		ext := filepath.Ext(entry.Name())
		if entry.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		fileCRDs, err := readCRDFile(filepath.Join(dir, entry.Name()))
		if err != nil {
			return nil, err
		}
		crds = append(crds, fileCRDs...)
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("no CustomResourceDefinitions in the .yaml, .yml or .json files of %s", dir)
	}
	return crds, nil
}

func readCRDFile(path string) ([]crd, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var crds []crd
	decoder := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for doc := 1; ; doc++ {
		var object map[string]any
		if err := decoder.Decode(&object); err != nil {
			if errors.Is(err, io.EOF) {
				return crds, nil
			}
			return nil, fmt.Errorf("decode %s, document %d: %w", path, doc, err)
		}
		if len(object) == 0 {
			continue
		}
		c, err := parseCRD(object)
		if err != nil {
			return nil, fmt.Errorf("%s, document %d: %w", path, doc, err)
		}
		c.file = path
		crds = append(crds, c)
	}
}

func parseCRD(object map[string]any) (crd, error) {
	u := &unstructured.Unstructured{Object: object}
	if u.GetAPIVersion() != "apiextensions.k8s.io/v1" || u.GetKind() != "CustomResourceDefinition" {
		return crd{}, fmt.Errorf("found %s %s, expected only apiextensions.k8s.io/v1 CustomResourceDefinitions", u.GetAPIVersion(), u.GetKind())
	}
	// The server owns status, and CRD files often carry an empty one.
	unstructured.RemoveNestedField(u.Object, "status")

	group, _, _ := unstructured.NestedString(u.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(u.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
	c := crd{object: u, group: group, plural: plural}
	for _, v := range versions {
		version, _ := v.(map[string]any)
		name, _, _ := unstructured.NestedString(version, "name")
		served, _, _ := unstructured.NestedBool(version, "served")
		if served {
			c.servedVersions = append(c.servedVersions, name)
		}
	}
	if u.GetName() == "" || group == "" || plural == "" || len(c.servedVersions) == 0 {
		return crd{}, fmt.Errorf("CustomResourceDefinition %q lacks metadata.name, spec.group, spec.names.plural or a served version", u.GetName())
	}
	return c, nil
}

// waitCRDServed polls until the CRD is Established and discovery lists its
// plural in each served version, because discovery, which clients' REST
// mappers read, may lag behind the Established condition.
func (s *Server) waitCRDServed(ctx context.Context, c crd) error {
	name := c.object.GetName()
	for {
		lastErr := s.checkCRDServed(ctx, c)
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CustomResourceDefinition %s is not served after %s: %v; see %s", name, readyTimeout, lastErr, s.apiserver.logPath)
		case <-time.After(pollInterval):
		}
	}
}

func (s *Server) checkCRDServed(ctx context.Context, c crd) error {
	current, err := s.dynamic.Resource(crdResource).Get(ctx, c.object.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	if !crdEstablished(current) {
		return errors.New("condition Established is not True")
	}
	for _, version := range c.servedVersions {
		resources, err := s.clientset.Discovery().ServerResourcesForGroupVersion(c.group + "/" + version)
		if err != nil {
			return fmt.Errorf("discovery of %s/%s: %w", c.group, version, err)
		}
		listed := slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == c.plural })
		if !listed {
			return fmt.Errorf("discovery of %s/%s does not list %s yet", c.group, version, c.plural)
		}
	}
	return nil
}

func crdEstablished(object *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(object.Object, "status", "conditions")
	for _, c := range conditions {
		condition, _ := c.(map[string]any)
		if condition["type"] == "Established" && condition["status"] == "True" {
			return true
		}
	}
	return false
}
