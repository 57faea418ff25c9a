package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/config"
	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
)

// Defaults of ControllerOptions.
const (
	// DefaultLeaseNamespace holds the leader Lease when the controller does
	// not run in a pod that names its own namespace in POD_NAMESPACE.
	DefaultLeaseNamespace = "ferry-system"
	// LeaseName is the coordination.k8s.io Lease the replicas of the
	// default installation compete for; see ControllerLeaseName.
	LeaseName = "ferry-controller"
	// DefaultResync is how often the controller rereads every STAGING build
	// from PostgreSQL.
	DefaultResync = 30 * time.Second
)

// Leader election timing, client-go's usual values: a new leader takes
// over at most LeaseDuration after the old one stopped renewing.
const (
	leaseDuration = 15 * time.Second
	renewDeadline = 10 * time.Second
	retryPeriod   = 2 * time.Second
)

// ControllerOptions configures RunController.
type ControllerOptions struct {
	Store   *store.Store
	Client  kubernetes.Interface
	Images  Images
	Catalog *Catalog
	Config  Config
	Logger  *slog.Logger
	// DatabaseURL, when set, lets the controller hear about new builds
	// through PostgreSQL notifications instead of waiting for a resync.
	DatabaseURL string
	// LeaseNamespace defaults to POD_NAMESPACE, then DefaultLeaseNamespace.
	LeaseNamespace string
	// Identity names this replica in the Lease; it defaults to the host
	// name plus a random suffix.
	Identity string
	Workers  int
	// Resync defaults to DefaultResync.
	Resync time.Duration
	// Logs receives the log lines the controller collects while this
	// replica leads.
	Logs logcache.Sink
	// LogClient, when set, sends the log collector's pods/log requests, so
	// that its one request per container does not use up Client's
	// client-side rate limit. Nil uses Client.
	LogClient kubernetes.Interface
	// EventRetention bounds the Kubernetes events kept in PostgreSQL.
	EventRetention EventRetention
	// Gateways writes Gateway API objects. With Config.RoutingEnabled, the
	// route reconciler runs when it is set or Config.Routing.Mode is
	// ingress, which needs no Gateway API.
	Gateways gatewayclient.Interface
	// Certificates supplies the domains' certificates with their keys
	// opened. Without it, routes are served without them.
	Certificates DesiredCertificates
	// RoutingReconcilers, when set, makes the routing reconcilers that run
	// next to the space route reconciler while routing is enabled. It is
	// called at the start of each leadership, because a reconciler's queue
	// ends with its Run.
	RoutingReconcilers func(ControllerOptions) []RoutingReconciler
	// Dynamic writes the objects of APIs Ferry has no typed client for:
	// cert-manager Certificates. Nil turns those off.
	Dynamic dynamic.Interface
}

// RoutingReconciler is a reconciler of routing objects that the
// controller runs while routing is enabled and this replica leads.
type RoutingReconciler interface {
	// Run reconciles until ctx ends, resyncing every resync.
	Run(ctx context.Context, resync time.Duration) error
	// RoutesChanged receives every payload of store.RoutesChannel: the
	// GUID of a space whose routing objects need a sync, or "" for every
	// space and the Gateways. It must not block.
	RoutesChanged(spaceGUID string)
}

func (o *ControllerOptions) setDefaults() {
	if o.LeaseNamespace == "" {
		o.LeaseNamespace = os.Getenv("POD_NAMESPACE")
	}
	if o.LeaseNamespace == "" {
		o.LeaseNamespace = DefaultLeaseNamespace
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = host + "_" + uuid.NewString()[:8]
	}
	if o.Workers < 1 {
		o.Workers = 2
	}
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
}

// ControllerLeaseName is the Lease of installation's controller replicas:
// LeaseName for the default installation, LeaseName-<installation> for
// others, so each installation elects its own leader.
func ControllerLeaseName(installation string) string {
	if installationOrDefault(installation) == DefaultInstallation {
		return LeaseName
	}
	return LeaseName + "-" + installation
}

// RunController runs the build reconciler while this replica holds the
// leader Lease, and campaigns again whenever it loses it, until ctx ends.
// Only the leader reconciles, so replicas never race on the same build.
func RunController(ctx context.Context, o ControllerOptions) error {
	o.setDefaults()
	if err := ensureLeaseNamespace(ctx, o.Client, o.LeaseNamespace); err != nil {
		return err
	}
	leaseName := ControllerLeaseName(o.Config.Installation)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: leaseName, Namespace: o.LeaseNamespace},
		Client:     o.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: o.Identity},
	}
	logger := o.Logger.With("identity", o.Identity, "lease", o.LeaseNamespace+"/"+leaseName)

	for ctx.Err() == nil {
		elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   leaseDuration,
			RenewDeadline:   renewDeadline,
			RetryPeriod:     retryPeriod,
			ReleaseOnCancel: true,
			Name:            leaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(leading context.Context) {
					logger.Info("leading: controller started")
					if err := runReconcilers(leading, o); err != nil {
						logger.Error("controller stopped with an error", "error", err)
					}
				},
				OnStoppedLeading: func() { logger.Info("no longer leading: controller stopped") },
				OnNewLeader: func(identity string) {
					if identity != o.Identity {
						logger.Info("another replica leads", "leader", identity)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		elector.Run(ctx)
	}
	return nil
}

// runReconcilers runs the build, app and task reconcilers, and the routing
// reconcilers when routing is enabled, until ctx, the leadership, ends.
// PostgreSQL notifications start work at once; each reconciler's periodic
// resync covers notifications that were missed.
func runReconcilers(ctx context.Context, o ControllerOptions) error {
	builds := NewBuildReconciler(o.Store, o.Client, o.Images, o.Catalog, o.Config, o.Logger)
	builds.logs = o.Logs
	// The crash handler reads the events of crashed pods. Crashes are
	// handled only after Run starts, when events is set.
	var events *eventWatcher
	apps := NewAppReconciler(AppReconcilerOptions{
		Client:          o.Client,
		Desired:         StoreDesiredApps{Store: o.Store},
		Config:          o.Config,
		Workload:        WorkloadConfigFrom(o.Config),
		Logger:          o.Logger,
		StagingMemoryMB: o.Config.StagingMemoryMB,
		OnCrash: func(ctx context.Context, c Crash) error {
			c = events.explainCrash(c)
			if err := store.RecordAuditEvent(ctx, o.Store.DB(), c.AuditEvent()); err != nil {
				return err
			}
			putCrashLogLine(o.Logs, c)
			return nil
		},
	})
	events = newEventWatcher(eventWatcherOptions{
		Client: o.Client, Store: o.Store, Logs: o.Logs, Logger: o.Logger, Retention: o.EventRetention,
		AppPods: apps.pods, StagingPods: builds.pods, StatefulSets: apps.statefulSets, Jobs: builds.jobs,
		Synced: append(slices.Clone(apps.synced), builds.synced...),
	})

	tasks := NewTaskReconciler(TaskReconcilerOptions{Store: o.Store, Client: o.Client, Installation: o.Config.Installation,
		Workload: WorkloadConfigFrom(o.Config), Logger: o.Logger})

	routes, routing := o.routingReconcilers()
	if o.DatabaseURL != "" {
		go o.listen(ctx, "task", store.ListenTasks, tasks.Enqueue, func() { tasks.resync(ctx) })
		go o.listen(ctx, "build", store.ListenBuilds, builds.Enqueue, func() { builds.resync(ctx) })
		appChanged := apps.Enqueue
		if routes != nil {
			// A new web process's Service joins the routes of its app.
			appChanged = func(guid string) {
				apps.Enqueue(guid)
				routes.EnqueueApp(guid)
			}
			routesChanged := func(spaceGUID string) {
				for _, rec := range routing {
					rec.RoutesChanged(spaceGUID)
				}
			}
			go o.listen(ctx, "route", store.ListenRoutes, routesChanged, func() { routesChanged("") })
		}
		go o.listen(ctx, "app", store.ListenApps, appChanged, func() { apps.resync(ctx) })
	}

	// When one reconciler stops, the other stops too, so the controller
	// restarts both rather than running half of itself. The event watcher
	// and the log collector only add to them, so they stop with them but
	// never stop them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var watchers sync.WaitGroup
	defer watchers.Wait()
	watchers.Go(func() { events.Run(ctx, 1) })
	if o.Logs != nil {
		logClient := o.LogClient
		if logClient == nil {
			logClient = o.Client
		}
		logs := NewLogCollector(LogCollectorOptions{Client: o.Client, Streamer: ClientLogStreamer{Client: logClient},
			Sink: o.Logs, Store: o.Store, Installation: o.Config.Installation, Logger: o.Logger})
		watchers.Go(func() {
			if err := logs.Run(ctx); err != nil && ctx.Err() == nil {
				o.Logger.Error("log collector stopped with an error", "error", err)
			}
		})
	}
	watchers.Go(func() {
		if err := tasks.Run(ctx, o.Workers, o.Resync); err != nil && ctx.Err() == nil {
			o.Logger.Error("task reconciler stopped with an error", "error", err)
		}
	})
	watchers.Go(func() {
		if err := RunScheduledTasks(ctx, o); err != nil && ctx.Err() == nil {
			o.Logger.Error("scheduled task reconciler stopped with an error", "error", err)
		}
	})
	for _, rec := range routing {
		watchers.Go(func() {
			if err := rec.Run(ctx, o.Resync); err != nil && ctx.Err() == nil {
				o.Logger.Error("routing reconciler stopped with an error", "error", err)
			}
		})
	}
	errc := make(chan error, 2)
	go func() { errc <- builds.Run(ctx, o.Workers, o.Resync) }()
	go func() { errc <- apps.Run(ctx, o.Workers, o.Resync) }()
	err := <-errc
	cancel()
	if second := <-errc; err == nil {
		err = second
	}
	return err
}

// routingReconcilers returns the space route reconciler and every
// routing reconciler to run: that one, followed by the ones
// o.RoutingReconcilers makes. It returns none when routing is off or
// cannot run, in gateway mode without a Gateway API client.
func (o ControllerOptions) routingReconcilers() (*RouteReconciler, []RoutingReconciler) {
	if !o.Config.RoutingEnabled {
		return nil, nil
	}
	if o.Gateways == nil && o.Config.Routing.Mode != config.RoutingModeIngress {
		o.Logger.Warn("routing is enabled but the controller has no Gateway API client; routes get no objects")
		return nil, nil
	}
	routes := NewRouteReconciler(RouteReconcilerOptions{
		Client: o.Client, Gateways: o.Gateways, Desired: StoreDesiredRoutes{Store: o.Store, Installation: o.Config.Installation},
		Apps: o.Store, Certificates: o.Certificates, Gateway: o.Config.Gateway, Routing: o.Config.Routing,
		Installation: o.Config.Installation, Logger: o.Logger,
	})
	routing := []RoutingReconciler{routes}
	internal := NewInternalRouteReconciler(InternalRouteReconcilerOptions{
		Client: o.Client, Config: o.Config.Routing.Internal, Installation: o.Config.Installation, Logger: o.Logger,
		Desired: StoreDesiredRoutes{Store: o.Store, Installation: o.Config.Installation},
	})
	routing = append(routing, wholeSync{internal, internal.Enqueue})
	policies := NewNetworkPolicyReconciler(NetworkPolicyReconcilerOptions{
		Client: o.Client, Desired: o.Store, Installation: o.Config.Installation, Logger: o.Logger,
	})
	routing = append(routing, spaceSync{policies, policies.Enqueue})
	if o.Gateways != nil && o.Config.Routing.Mode == config.RoutingModeGateway {
		gateways := NewGatewayReconciler(GatewayReconcilerOptions{
			Client: o.Client, Gateways: o.Gateways, Dynamic: o.Dynamic, Certificates: o.Certificates,
			Desired: StoreDesiredGateways{Store: o.Store, Installation: o.Config.Installation},
			Config:  o.Config, Logger: o.Logger,
		})
		// Every notification may change a listener: a space's new TCP or
		// UDP route adds one.
		routing = append(routing, wholeSync{gateways, gateways.Enqueue})
	}
	if o.RoutingReconcilers != nil {
		routing = append(routing, o.RoutingReconcilers(o)...)
	}
	return routes, routing
}

// wholeSync adapts a reconciler that has a single whole-installation
// sync to RoutingReconciler: every change starts that sync.
type wholeSync struct {
	runner interface {
		Run(ctx context.Context, resync time.Duration) error
	}
	enqueue func()
}

func (w wholeSync) Run(ctx context.Context, resync time.Duration) error {
	return w.runner.Run(ctx, resync)
}

func (w wholeSync) RoutesChanged(string) { w.enqueue() }

// spaceSync adapts a reconciler keyed by space GUID to RoutingReconciler.
type spaceSync struct {
	runner interface {
		Run(ctx context.Context, resync time.Duration) error
	}
	enqueue func(spaceGUID string)
}

func (s spaceSync) Run(ctx context.Context, resync time.Duration) error {
	return s.runner.Run(ctx, resync)
}

func (s spaceSync) RoutesChanged(spaceGUID string) { s.enqueue(spaceGUID) }

// listen feeds notifications of one kind into a reconciler's queue; an
// empty payload means the connection was re-established and notifications
// may have been lost, so the reconciler resyncs.
func (o ControllerOptions) listen(ctx context.Context, kind string,
	listen func(context.Context, string, func(string)) error, enqueue func(string), resync func()) {
	err := listen(ctx, o.DatabaseURL, func(guid string) {
		if guid == "" {
			resync()
			return
		}
		enqueue(guid)
	})
	if err != nil {
		o.Logger.Warn(kind+" notifications unavailable; changes wait for the resync", "error", err, "resync", o.Resync)
	}
}

// ensureLeaseNamespace creates the Lease's namespace when it is missing.
func ensureLeaseNamespace(ctx context.Context, client kubernetes.Interface, name string) error {
	_, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read namespace %s: %w", name, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelManagedBy: ManagedByFerry}}}
	_, err = client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil && !errors.Is(err, context.Canceled) && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s for the leader Lease: %w", name, err)
	}
	return nil
}
