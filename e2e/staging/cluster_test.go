//go:build e2e

package staging

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ferrycf/ferry/e2e/envtest"
	"github.com/ferrycf/ferry/k8sbackend"
)

// buildJob returns the staging Job of a build in the space's namespace.
func buildJob(t *testing.T, env *envtest.Environment, space, build string) *batchv1.Job {
	t.Helper()
	job, err := env.Kube.BatchV1().Jobs(k8sbackend.SpaceNamespace(space)).Get(t.Context(), k8sbackend.BuildJobName(build), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("staging Job of build %s: %v", build, err)
	}
	return job
}

// buildLog returns the log of the build container of the build's staging
// pod, read through the Kubernetes API.
func buildLog(t *testing.T, env *envtest.Environment, space, build string) string {
	t.Helper()
	namespace := k8sbackend.SpaceNamespace(space)
	pods, err := env.Kube.CoreV1().Pods(namespace).List(t.Context(), metav1.ListOptions{
		LabelSelector: "batch.kubernetes.io/job-name=" + k8sbackend.BuildJobName(build)})
	if err != nil {
		t.Fatalf("staging pods of build %s: %v", build, err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("build %s has %d staging pods, want 1", build, len(pods.Items))
	}
	log, err := env.Kube.CoreV1().Pods(namespace).GetLogs(pods.Items[0].Name,
		&corev1.PodLogOptions{Container: k8sbackend.BuildContainer}).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("log of staging pod %s: %v", pods.Items[0].Name, err)
	}
	return string(log)
}

// jobDuration is the time from the Job's start to its completion or
// failure, from the Job status.
func jobDuration(t *testing.T, job *batchv1.Job) time.Duration {
	t.Helper()
	if job.Status.StartTime == nil {
		t.Fatalf("Job %s has no start time", job.Name)
	}
	end := job.Status.CompletionTime
	for _, c := range job.Status.Conditions {
		if end == nil && c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			end = &c.LastTransitionTime
		}
	}
	if end == nil {
		t.Fatalf("Job %s has not finished", job.Name)
	}
	return end.Sub(job.Status.StartTime.Time)
}

// remoteImage reads an image from the registry at its host address.
func remoteImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(parsed, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("image %s: %v", ref, err)
	}
	return img
}

// imageProcessTypes returns the sorted process types in an image's
// io.buildpacks.build.metadata label, and the image's digest.
func imageProcessTypes(t *testing.T, img v1.Image) ([]string, string) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Processes []struct {
			Type string `json:"type"`
		} `json:"processes"`
	}
	label := cf.Config.Labels[k8sbackend.BuildMetadataLabel]
	if err := json.Unmarshal([]byte(label), &md); err != nil {
		t.Fatalf("label %s = %q: %v", k8sbackend.BuildMetadataLabel, label, err)
	}
	types := []string{}
	for _, p := range md.Processes {
		types = append(types, p.Type)
	}
	slices.Sort(types)
	return types, digest.String()
}

// layerDigests returns the digests of an image's layers.
func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	return digests
}

// repositoryTags returns the tags of a repository, or none when the
// registry does not know the repository.
func repositoryTags(t *testing.T, repository string) []string {
	t.Helper()
	repo, err := name.NewRepository(repository)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(repo, remote.WithContext(t.Context()))
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("list tags of %s: %v", repository, err)
	}
	return tags
}
