//go:build e2e

package staging

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// runTimeout is a deadline for waiting only: for instances to start, stop
// or crash, and for a deleted app's objects to go.
const runTimeout = 5 * time.Minute

// appClient requests apps at the pod and Service addresses of the local
// environment, which the host reaches over the bridge. It ignores proxy
// settings, so requests never leave the machine.
var appClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext},
}

// instancePod is a running pod of a process, with its instance index.
type instancePod struct {
	index int
	name  string
	uid   string
	ip    string
	// revision is the pod's app revision label.
	revision string
}

// awaitPods waits until a process has exactly n pods, none of them being
// deleted and each with an IP, and returns them ordered by index.
func awaitPods(t *testing.T, env *envtest.Environment, app cfApp, process string, n int) []instancePod {
	t.Helper()
	var pods []instancePod
	envtest.WaitFor(t, runTimeout, fmt.Sprintf("%d pods of app %s", n, app.name), func(ctx context.Context) (bool, string) {
		var settled bool
		var detail string
		pods, settled, detail = listPods(ctx, env, app, process, n)
		return settled, detail
	})
	return pods
}

// listPods returns the pods of a process that are not being deleted and
// have an IP, ordered by index. It reports whether these are all its pods
// and there are n of them, and describes the pods it found.
func listPods(ctx context.Context, env *envtest.Environment, app cfApp, process string, n int) ([]instancePod, bool, string) {
	list, err := env.Kube.CoreV1().Pods(k8sbackend.SpaceNamespace(app.space)).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{k8sbackend.LabelProcessGUID: process}.String()})
	if err != nil {
		return nil, false, err.Error()
	}
	var pods []instancePod
	var states []string
	settled := len(list.Items) == n
	for _, pod := range list.Items {
		states = append(states, pod.Name+" "+string(pod.Status.Phase))
		if pod.DeletionTimestamp != nil || pod.Status.PodIP == "" {
			settled = false
			continue
		}
		index, err := strconv.Atoi(pod.Labels[appsv1.PodIndexLabel])
		if err != nil {
			return nil, false, fmt.Sprintf("pod %s has no valid index label", pod.Name)
		}
		pods = append(pods, instancePod{index: index, name: pod.Name, uid: string(pod.UID), ip: pod.Status.PodIP,
			revision: pod.Labels[k8sbackend.LabelRevision]})
	}
	slices.SortFunc(pods, func(a, b instancePod) int { return a.index - b.index })
	return pods, settled, "pods: " + strings.Join(states, ", ")
}

// podUIDs returns the UID of each pod by instance index.
func podUIDs(pods []instancePod) map[int]string {
	uids := map[int]string{}
	for _, p := range pods {
		uids[p.index] = p.uid
	}
	return uids
}

// serviceURL returns the URL of a web process's Service, at its cluster
// IP, which kube-proxy forwards to the pods.
func serviceURL(t *testing.T, env *envtest.Environment, app cfApp, web string) string {
	t.Helper()
	svc, err := env.Kube.CoreV1().Services(k8sbackend.SpaceNamespace(app.space)).Get(t.Context(),
		k8sbackend.ProcessServiceName(web), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Service of app %s: %v", app.name, err)
	}
	return fmt.Sprintf("http://%s:%d", svc.Spec.ClusterIP, k8sbackend.AppPort)
}

// podURL returns the URL of a pod's app port.
func podURL(pod instancePod) string {
	return fmt.Sprintf("http://%s:%d", pod.ip, k8sbackend.AppPort)
}

// awaitBody requests url until the response is 200 with a body that
// contains want, and returns the body. A Service responds only once its
// endpoints list a ready pod, and a pod only once its server listens.
func awaitBody(t *testing.T, url, want string) string {
	t.Helper()
	var body string
	envtest.WaitFor(t, runTimeout, "GET "+url+" to contain "+strconv.Quote(want), func(ctx context.Context) (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := appClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if err != nil {
			return false, err.Error()
		}
		body = string(data)
		return resp.StatusCode == http.StatusOK && strings.Contains(body, want), resp.Status + ": " + body
	})
	return body
}

// appObjects lists what runs an app in its space's namespace: its
// StatefulSets, Services, env Secret and pods. Finished staging Jobs and
// their pods are not among them; they stay until their TTL.
func appObjects(ctx context.Context, env *envtest.Environment, app cfApp) ([]string, error) {
	namespace := k8sbackend.SpaceNamespace(app.space)
	opts := metav1.ListOptions{LabelSelector: labels.Set{
		k8sbackend.LabelAppGUID: app.guid, k8sbackend.LabelComponent: k8sbackend.ComponentApp}.String()}
	var names []string

	sets, err := env.Kube.AppsV1().StatefulSets(namespace).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, o := range sets.Items {
		names = append(names, "StatefulSet "+o.Name)
	}

	services, err := env.Kube.CoreV1().Services(namespace).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, o := range services.Items {
		names = append(names, "Service "+o.Name)
	}

	secrets, err := env.Kube.CoreV1().Secrets(namespace).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, o := range secrets.Items {
		names = append(names, "Secret "+o.Name)
	}

	pods, err := env.Kube.CoreV1().Pods(namespace).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, o := range pods.Items {
		names = append(names, "Pod "+o.Name)
	}
	return names, nil
}

// awaitAppGone waits until nothing that runs the app is left.
func awaitAppGone(t *testing.T, env *envtest.Environment, app cfApp) {
	t.Helper()
	envtest.WaitFor(t, runTimeout, "objects of deleted app "+app.name+" to go", func(ctx context.Context) (bool, string) {
		names, err := appObjects(ctx, env, app)
		if err != nil {
			return false, err.Error()
		}
		return len(names) == 0, strings.Join(names, ", ")
	})
}

// checkAppObjects checks that a started app has one StatefulSet per
// process, a Service for web and an env Secret.
func checkAppObjects(t *testing.T, env *envtest.Environment, f *ferry, app cfApp) {
	t.Helper()
	names, err := appObjects(t.Context(), env, app)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Secret " + k8sbackend.AppEnvSecretName(app.guid)}
	for _, p := range f.appProcesses(t, app.guid) {
		want = append(want, "StatefulSet "+k8sbackend.ProcessWorkloadName(p.GUID))
		if p.Type == "web" {
			want = append(want, "Service "+k8sbackend.ProcessServiceName(p.GUID))
		}
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			t.Errorf("app %s has no %s; it has %v", app.name, w, names)
		}
	}
}
