package cfapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// Instance states as Cloud Controller reports them. The cf CLI counts a
// process as started when any instance is RUNNING, and as failed when
// every instance is CRASHED.
const (
	InstanceRunning  = "RUNNING"
	InstanceStarting = "STARTING"
	InstanceCrashed  = "CRASHED"
	InstanceDown     = "DOWN"
)

// instanceFileDescriptors is the file descriptor limit stats report for
// every instance, the same as VCAP_APPLICATION's.
const instanceFileDescriptors = instanceFileDescriptorLimit

// InstanceStatus is the runtime state of one instance of a process, as
// the runtime that runs apps observes it.
type InstanceStatus struct {
	Index int
	// State is InstanceRunning, InstanceStarting, InstanceCrashed or
	// InstanceDown.
	State string
	// Since is when the instance entered State, the start of its uptime.
	// The zero time means unknown.
	Since time.Time
	// Details is the reason an instance is not running, such as
	// "insufficient resources". The cf CLI shows it.
	Details string
	// Routable is whether the readiness check passes, or nil if unknown.
	Routable     *bool
	InstanceGUID string
	Host         string
	InternalIP   string
	Ports        []InstancePort
	// Usage is the latest resource usage sample, or nil if none.
	Usage *InstanceUsage
}

// InstancePort maps a port of the instance to the port that reaches it
// from outside the instance.
type InstancePort struct {
	External int
	Internal int
}

// InstanceUsage is one resource usage sample of an instance.
type InstanceUsage struct {
	Time time.Time
	// CPU is the fraction of one CPU core in use: 0.5 is half a core.
	CPU float64
	// CPUEntitlement is the fraction of the instance's CPU share in use,
	// or nil if the runtime does not know it.
	CPUEntitlement *float64
	MemBytes       uint64
	DiskBytes      uint64
	// LogRate is bytes of logs per second.
	LogRate uint64
}

// InstanceReporter reports the instances of a process from the runtime.
// It is called only for processes of started apps, because every instance
// of a stopped app is DOWN. It returns one InstanceStatus per instance, in
// any order. An error means the runtime could not be reached.
type InstanceReporter interface {
	Instances(ctx context.Context, app store.App, process store.Process) ([]InstanceStatus, error)
}

// InstanceRestarter stops one instance of a process so the runtime starts
// it again. The index is below the process's instance count. An error
// means the runtime could not be reached.
type InstanceRestarter interface {
	RestartInstance(ctx context.Context, app store.App, process store.Process, index int) error
}

// errNoRuntime is the error of a request that needs the runtime when the
// API runs without one.
func errNoRuntime() error {
	return apierr.ServiceUnavailable("No runtime is configured to manage app instances: run the API with the Ferry controller")
}

// errInstancesUnavailable is the error when the runtime failed to report.
func errInstancesUnavailable() error {
	return apierr.ServiceUnavailable("Instances information unavailable: the runtime did not answer, try again later")
}

// instancesOf reads the instances of p from the runtime. Every desired
// instance of a stopped app is DOWN, as Cloud Controller reports them when
// Diego runs nothing for the process, so cf apps prints "web:0/1" for a
// stopped app. Without a reporter, every desired instance of a started
// app is DOWN too, so cf push keeps waiting instead of reporting a start.
func (a *API) instancesOf(ctx context.Context, app store.App, p store.Process) ([]InstanceStatus, error) {
	if app.State != store.AppStateStarted || a.instances == nil {
		down := make([]InstanceStatus, p.Instances)
		for i := range down {
			down[i] = InstanceStatus{Index: i, State: InstanceDown}
		}
		return down, nil
	}
	statuses, err := a.instances.Instances(ctx, app, p)
	if err != nil {
		loggerFrom(ctx, a.logger).Error("reading instances failed", "app_guid", app.GUID, "process_guid", p.GUID, "error", err)
		return nil, errInstancesUnavailable()
	}
	slices.SortFunc(statuses, func(x, y InstanceStatus) int { return x.Index - y.Index })
	return statuses, nil
}

// processStatsJSON is one entry of GET /v3/processes/:guid/stats. The cf
// CLI decodes mem_quota, disk_quota and usage values as unsigned
// integers, so they are never negative, and uptime as an integer.
type processStatsJSON struct {
	Type               string              `json:"type"`
	Index              int                 `json:"index"`
	InstanceGUID       string              `json:"instance_guid,omitempty"`
	State              string              `json:"state"`
	Routable           *bool               `json:"routable"`
	Host               *string             `json:"host,omitempty"`
	InstanceInternalIP *string             `json:"instance_internal_ip,omitempty"`
	Uptime             int64               `json:"uptime"`
	MemQuota           *uint64             `json:"mem_quota,omitempty"`
	DiskQuota          *uint64             `json:"disk_quota,omitempty"`
	LogRateLimit       *int64              `json:"log_rate_limit,omitempty"`
	FDSQuota           *int                `json:"fds_quota,omitempty"`
	IsolationSegment   *string             `json:"isolation_segment"`
	Details            *string             `json:"details"`
	InstancePorts      *[]instancePortJSON `json:"instance_ports,omitempty"`
	Usage              *instanceUsageJSON  `json:"usage,omitempty"`
}

type instancePortJSON struct {
	External             int  `json:"external"`
	Internal             int  `json:"internal"`
	ExternalTLSProxyPort *int `json:"external_tls_proxy_port"`
	InternalTLSProxyPort *int `json:"internal_tls_proxy_port"`
}

// instanceUsageJSON is an instance's usage. Without a sample it is the
// empty object, as Cloud Controller sends it.
type instanceUsageJSON struct {
	Time           string   `json:"time,omitempty"`
	CPU            *float64 `json:"cpu,omitempty"`
	CPUEntitlement *float64 `json:"cpu_entitlement,omitempty"`
	Mem            *uint64  `json:"mem,omitempty"`
	Disk           *uint64  `json:"disk,omitempty"`
	LogRate        *uint64  `json:"log_rate,omitempty"`
}

// processStats serves GET /v3/processes/:guid/stats and GET
// /v3/apps/:guid/processes/:type/stats, which cf app and the waits of
// push, start, restart and scale poll every few seconds.
func (a *API) processStats(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, p, err := a.processOfPath(r)
	if err != nil {
		return nil, err
	}
	statuses, err := a.instancesOf(ctx, app, p)
	if err != nil {
		return nil, err
	}

	now := time.Now()
	resources := make([]processStatsJSON, len(statuses))
	for i, s := range statuses {
		resources[i] = presentInstanceStats(p, s, now)
	}
	return ok(map[string]any{"resources": resources}), nil
}

// presentInstanceStats renders one instance. A DOWN instance has no
// quotas, ports or usage, as in Cloud Controller.
func presentInstanceStats(p store.Process, s InstanceStatus, now time.Time) processStatsJSON {
	out := processStatsJSON{
		Type:     p.Type,
		Index:    s.Index,
		State:    s.State,
		Routable: s.Routable,
		Uptime:   uptimeSeconds(s.Since, now),
		Details:  nullable(s.Details),
	}
	if s.State == InstanceDown {
		return out
	}

	memQuota := uint64(p.MemoryMB) * 1024 * 1024
	diskQuota := uint64(p.DiskMB) * 1024 * 1024
	logRateLimit := p.LogRateLimit
	fds := instanceFileDescriptors
	ports := make([]instancePortJSON, len(s.Ports))
	for i, port := range s.Ports {
		ports[i] = instancePortJSON{External: port.External, Internal: port.Internal}
	}
	out.InstanceGUID = s.InstanceGUID
	out.Host = &s.Host
	out.InstanceInternalIP = &s.InternalIP
	out.MemQuota = &memQuota
	out.DiskQuota = &diskQuota
	out.LogRateLimit = &logRateLimit
	out.FDSQuota = &fds
	out.InstancePorts = &ports
	out.Usage = &instanceUsageJSON{}
	if u := s.Usage; u != nil {
		cpu := u.CPU
		out.Usage = &instanceUsageJSON{
			Time:           timestamp(u.Time),
			CPU:            &cpu,
			CPUEntitlement: u.CPUEntitlement,
			Mem:            &u.MemBytes,
			Disk:           &u.DiskBytes,
			LogRate:        &u.LogRate,
		}
	}
	return out
}

// uptimeSeconds returns the whole seconds from since to now, and 0 for an
// unknown or future since.
func uptimeSeconds(since, now time.Time) int64 {
	if since.IsZero() || since.After(now) {
		return 0
	}
	return int64(now.Sub(since) / time.Second)
}

// processInstanceJSON is an entry of a process's embedded
// process_instances: since is the uptime in seconds.
type processInstanceJSON struct {
	Index int    `json:"index"`
	State string `json:"state"`
	Since int64  `json:"since"`
}

// embeddedInstances returns the instances of each process, keyed by
// process guid, for embed=process_instances. It reads the processes' apps
// in one query and calls the runtime once per process.
func (a *API) embeddedInstances(ctx context.Context, r *http.Request, processes []store.Process) (map[string][]processInstanceJSON, error) {
	out := make(map[string][]processInstanceJSON, len(processes))
	if len(processes) == 0 {
		return out, nil
	}
	appGUIDs := make([]string, 0, len(processes))
	for _, p := range processes {
		appGUIDs = append(appGUIDs, p.AppGUID)
	}
	slices.Sort(appGUIDs)
	appGUIDs = slices.Compact(appGUIDs)
	apps, _, err := a.store.Apps(ctx, store.AppFilter{CommonFilter: store.CommonFilter{GUIDs: appGUIDs}, OmitEnvironment: true},
		store.Page{Number: 1, PerPage: len(appGUIDs)}, visibility(r))
	if err != nil {
		return nil, err
	}
	byGUID := make(map[string]store.App, len(apps))
	for _, app := range apps {
		byGUID[app.GUID] = app
	}

	now := time.Now()
	for _, p := range processes {
		list := []processInstanceJSON{}
		app, found := byGUID[p.AppGUID]
		if found {
			// TODO: read every process's instances in one call to the
			// runtime once InstanceReporter can report several processes.
			statuses, err := a.instancesOf(ctx, app, p)
			if err != nil {
				return nil, err
			}
			for _, s := range statuses {
				list = append(list, processInstanceJSON{Index: s.Index, State: s.State, Since: uptimeSeconds(s.Since, now)})
			}
		}
		out[p.GUID] = list
	}
	return out, nil
}

// restartProcessInstance serves DELETE /v3/processes/:guid/instances/:index
// and DELETE /v3/apps/:guid/processes/:type/instances/:index, which cf
// restart-app-instance sends. The runtime stops the instance and starts it
// again.
func (a *API) restartProcessInstance(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, p, err := a.processForManage(r)
	if err != nil {
		return nil, err
	}
	index, err := strconv.Atoi(pathParam(r, "index"))
	if err != nil || index < 0 || index >= p.Instances {
		return nil, apierr.NotFound("Instance")
	}
	if a.restarter == nil {
		return nil, errNoRuntime()
	}

	if err := a.restarter.RestartInstance(ctx, app, p, index); err != nil {
		loggerFrom(ctx, a.logger).Error("restarting an instance failed", "app_guid", app.GUID, "process_guid", p.GUID, "index", index, "error", err)
		return nil, errInstancesUnavailable()
	}
	event := processEvent(actor, "audit.app.process.terminate_instance", app, p, nil)
	event.Data["process_index"] = index
	if err := store.RecordAuditEvent(ctx, a.store.DB(), event); err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("instance restarted", "app_guid", app.GUID, "process_guid", p.GUID, "index", index)
	return noContent(), nil
}
