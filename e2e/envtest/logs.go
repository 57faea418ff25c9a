package envtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SaveLogs copies every component log and a text snapshot of the cluster's
// nodes, pods and events into t.ArtifactDir(). With go test -artifacts that
// directory is kept under -outputdir; without it, go test deletes it after
// the test.
func (e *Environment) SaveLogs(t testing.TB) {
	t.Helper()
	dir := filepath.Join(t.ArtifactDir(), "ferry-env")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("save environment logs: %v", err)
		return
	}

	logs, err := filepath.Glob(filepath.Join(e.LogDir, "*.log"))
	if err != nil {
		t.Logf("save environment logs: %v", err)
	}
	for _, src := range logs {
		if err := copyFile(src, filepath.Join(dir, filepath.Base(src))); err != nil {
			t.Logf("save environment log %s: %v", src, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := os.WriteFile(filepath.Join(dir, "cluster.txt"), []byte(e.clusterSnapshot(ctx)), 0o644); err != nil {
		t.Logf("save cluster snapshot: %v", err)
	}
	t.Logf("saved %d component logs and a cluster snapshot to %s", len(logs), dir)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// clusterSnapshot renders nodes, pods and events of all namespaces. A list
// that fails is reported in the text, so a broken API server still leaves
// the other parts.
func (e *Environment) clusterSnapshot(ctx context.Context) string {
	var b strings.Builder

	b.WriteString("== nodes\n")
	if nodes, err := e.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(&b, "list nodes: %v\n", err)
	} else {
		for _, node := range nodes.Items {
			fmt.Fprintf(&b, "%s\n", node.Name)
			for _, c := range node.Status.Conditions {
				fmt.Fprintf(&b, "  %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.Message)
			}
		}
	}

	b.WriteString("\n== pods\n")
	if pods, err := e.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(&b, "list pods: %v\n", err)
	} else {
		for _, pod := range pods.Items {
			writePod(&b, &pod)
		}
	}

	b.WriteString("\n== events\n")
	if events, err := e.Kube.CoreV1().Events("").List(ctx, metav1.ListOptions{}); err != nil {
		fmt.Fprintf(&b, "list events: %v\n", err)
	} else {
		items := events.Items
		sort.Slice(items, func(i, j int) bool { return eventTime(&items[i]).Before(eventTime(&items[j])) })
		for _, ev := range items {
			fmt.Fprintf(&b, "%s %s %s/%s %s %s: %s\n", eventTime(&ev).UTC().Format(time.RFC3339), ev.Type,
				ev.InvolvedObject.Namespace, ev.InvolvedObject.Name, ev.InvolvedObject.Kind, ev.Reason, ev.Message)
		}
	}
	return b.String()
}

func writePod(b *strings.Builder, pod *corev1.Pod) {
	fmt.Fprintf(b, "%s/%s phase=%s ip=%s\n", pod.Namespace, pod.Name, pod.Status.Phase, pod.Status.PodIP)
	for _, c := range pod.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			fmt.Fprintf(b, "  %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		state := "running"
		switch {
		case cs.State.Waiting != nil:
			state = "waiting " + cs.State.Waiting.Reason + " " + cs.State.Waiting.Message
		case cs.State.Terminated != nil:
			state = fmt.Sprintf("terminated exit=%d %s", cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
		}
		fmt.Fprintf(b, "  container %s image=%s ready=%t restarts=%d %s\n", cs.Name, cs.Image, cs.Ready, cs.RestartCount, state)
	}
}

func eventTime(ev *corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	default:
		return ev.CreationTimestamp.Time
	}
}
