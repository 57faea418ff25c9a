package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/ferrycf/ferry/cfapi"
	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/k8sbackend"
	"github.com/ferrycf/ferry/store"
)

// instanceAdapter serves the API's instance reporting and single-instance
// restarts from k8sbackend's InstanceTracker, which reads pods from an
// informer cache, so a cf CLI poll never reaches the Kubernetes API.
type instanceAdapter struct{ tracker *k8sbackend.InstanceTracker }

func (a instanceAdapter) Instances(ctx context.Context, app store.App, p store.Process) ([]cfapi.InstanceStatus, error) {
	got, err := a.tracker.ProcessInstances(k8sbackend.InstanceQuery{
		SpaceGUID: app.SpaceGUID, ProcessGUID: p.GUID, Instances: p.Instances,
		MemoryMB: p.MemoryMB, DiskMB: p.DiskMB, LogRateLimit: p.LogRateLimit, Revision: k8sbackend.AppRevision(app),
	})
	if err != nil {
		return nil, err
	}
	out := make([]cfapi.InstanceStatus, len(got))
	for i, s := range got {
		// A crashed instance's Since is its exit time; CF's uptime counts
		// only for running and starting instances.
		since := s.Since
		if s.State != k8sbackend.InstanceRunning && s.State != k8sbackend.InstanceStarting {
			since = time.Time{}
		}
		ports := make([]cfapi.InstancePort, len(s.Ports))
		for j, port := range s.Ports {
			ports[j] = cfapi.InstancePort{External: int(port), Internal: int(port)}
		}
		out[i] = cfapi.InstanceStatus{
			Index: s.Index, State: s.State, Since: since, Details: s.Details, Routable: s.Routable,
			InstanceGUID: s.InstanceGUID, Host: s.Host, InternalIP: s.InternalIP, Ports: ports,
		}
	}
	return out, nil
}

func (a instanceAdapter) RestartInstance(ctx context.Context, app store.App, p store.Process, index int) error {
	return a.tracker.RestartInstance(ctx, app.SpaceGUID, p.GUID, index)
}

// runtimeBackends returns the API's instance reporter and restarter when a
// cluster is configured, or nils, which the API reports as "no runtime".
func runtimeBackends(ctx context.Context, cfg config.Config, logger *slog.Logger) (cfapi.InstanceReporter, cfapi.InstanceRestarter) {
	if !kubernetesConfigured(cfg) {
		return nil, nil
	}
	client, err := kubernetesClient(cfg)
	if err != nil {
		logger.Error("instance reporting unavailable", "error", err)
		return nil, nil
	}
	tracker := k8sbackend.NewInstanceTracker(client, cfg.Kubernetes.Installation)
	// The API serves while the caches fill, so an unreachable cluster
	// cannot hold up logins; until then instances read as DOWN.
	go func() {
		if err := tracker.Start(ctx); err != nil && ctx.Err() == nil {
			logger.Error("instance reporting unavailable", "error", err)
		}
	}()
	adapter := instanceAdapter{tracker: tracker}
	return adapter, adapter
}
