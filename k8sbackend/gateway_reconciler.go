package k8sbackend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"

	"github.com/ferrycf/ferry/store"
)

// gatewaysKey is the one queue key of the gateway reconciler, because
// every sync covers the whole installation.
const gatewaysKey = "gateways"

// ErrGatewayNotFound reports that a Gateway Ferry adds listeners to, or
// copies listeners from, does not exist. Ferry never creates it, so the
// reconciler retries until the operator does.
var ErrGatewayNotFound = errors.New("gateway not found")

// GatewayDomainSpec is an external HTTP domain as the gateway reconciler
// needs it.
type GatewayDomainSpec struct {
	Name string
	// OrgGUID is the owner of a private domain, or "" for a shared domain.
	OrgGUID string
	// ClusterIssuer is the domain's AnnotationClusterIssuer value, or "".
	ClusterIssuer string
}

// DesiredGateways is the source of the routing state that shapes the
// Gateways, normally PostgreSQL.
type DesiredGateways interface {
	// GatewayDomains returns every domain that HTTP routes can use from
	// outside the cluster.
	GatewayDomains(ctx context.Context) ([]GatewayDomainSpec, error)
	// PortRoutes returns every TCP and UDP route of the installation,
	// without destinations.
	PortRoutes(ctx context.Context) ([]RouteSpec, error)
	// DedicatedGatewayOrgs returns the GUIDs of the organizations that
	// have their own Gateway.
	DedicatedGatewayOrgs(ctx context.Context) ([]string, error)
}

// StoreDesiredGateways reads DesiredGateways from the store.
type StoreDesiredGateways struct {
	Store *store.Store
	// Installation is RouteSpec.Installation of every route.
	Installation string
}

// GatewayDomains implements DesiredGateways.
func (s StoreDesiredGateways) GatewayDomains(ctx context.Context) ([]GatewayDomainSpec, error) {
	domains, err := s.Store.GatewayDomains(ctx)
	if err != nil {
		return nil, err
	}
	specs := make([]GatewayDomainSpec, 0, len(domains))
	for _, d := range domains {
		specs = append(specs, GatewayDomainSpec{Name: d.Name, OrgGUID: d.OrganizationGUID,
			ClusterIssuer: d.Annotations[AnnotationClusterIssuer]})
	}
	return specs, nil
}

// PortRoutes implements DesiredGateways.
func (s StoreDesiredGateways) PortRoutes(ctx context.Context) ([]RouteSpec, error) {
	routes, err := s.Store.GatewayPortRoutes(ctx)
	if err != nil {
		return nil, err
	}
	specs := make([]RouteSpec, 0, len(routes))
	for _, r := range routes {
		specs = append(specs, RouteSpec{Installation: s.Installation, GUID: r.GUID, Domain: r.DomainName,
			Port: int32(r.Port), Protocol: r.Protocol, SpaceGUID: r.SpaceGUID, OrgGUID: r.OrgGUID})
	}
	return specs, nil
}

// DedicatedGatewayOrgs implements DesiredGateways.
func (s StoreDesiredGateways) DedicatedGatewayOrgs(ctx context.Context) ([]string, error) {
	return s.Store.DedicatedGatewayOrgs(ctx)
}

// GatewayReconcilerOptions configures NewGatewayReconciler.
type GatewayReconcilerOptions struct {
	// Client writes the TLS Secrets and reads the API server's discovery.
	Client kubernetes.Interface
	// Gateways writes listeners and organizations' Gateways.
	Gateways gatewayclient.Interface
	// Dynamic writes cert-manager Certificates. Nil turns them off.
	Dynamic      dynamic.Interface
	Certificates DesiredCertificates
	Desired      DesiredGateways
	// Config supplies Installation, Gateway and Routing.
	Config Config
	Logger *slog.Logger
}

// GatewayReconciler keeps the objects around the Gateways in line with
// the whole installation. It writes a TLS Secret per uploaded
// certificate, a cert-manager Certificate per domain with a cluster
// issuer, the installation's HTTPS, TCP and UDP listeners on the shared
// Gateways, and the dedicated Gateways of organizations. It never
// creates or deletes the main Gateway or the UDP Gateway. Every sync
// reads everything, so it has one queue key.
type GatewayReconciler struct {
	client       kubernetes.Interface
	gateways     gatewayclient.Interface
	dynamic      dynamic.Interface
	certificates DesiredCertificates
	desired      DesiredGateways
	cfg          Config
	logger       *slog.Logger
	queue        workqueue.TypedRateLimitingInterface[string]

	// certManagerAbsent is true after a sync found no cert-manager
	// Certificate API, so the message is logged once until it appears.
	certManagerAbsent bool
}

// NewGatewayReconciler returns a reconciler that Run starts.
func NewGatewayReconciler(o GatewayReconcilerOptions) *GatewayReconciler {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &GatewayReconciler{
		client: o.Client, gateways: o.Gateways, dynamic: o.Dynamic, certificates: o.Certificates, desired: o.Desired,
		cfg: o.Config, logger: logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "gateways"}),
	}
}

// Enqueue queues a sync of every Gateway object.
func (r *GatewayReconciler) Enqueue() { r.queue.Add(gatewaysKey) }

// Run serves the queue with one worker, and queues a sync at start and
// every resync, until ctx ends.
func (r *GatewayReconciler) Run(ctx context.Context, resync time.Duration) error {
	defer r.queue.ShutDown()
	go wait.UntilWithContext(ctx, func(context.Context) { r.Enqueue() }, resync)
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	for r.processNext(ctx) {
	}
	return nil
}

func (r *GatewayReconciler) processNext(ctx context.Context) bool {
	key, shutdown := r.queue.Get()
	if shutdown {
		return false
	}
	defer r.queue.Done(key)

	err := r.Reconcile(ctx)
	switch {
	case err == nil:
		r.queue.Forget(key)
	case onlyNotOwned(err):
		r.logger.Warn("gateway objects are blocked by objects Ferry does not manage", "error", err)
		r.queue.Forget(key)
	case ctx.Err() != nil:
	default:
		r.logger.Warn("reconcile gateways failed, retrying", "error", err, "retries", r.queue.NumRequeues(key))
		r.queue.AddRateLimited(key)
	}
	return true
}

// Reconcile brings the TLS Secrets, cert-manager Certificates, listeners
// and organizations' Gateways in line with the store. Each part runs even
// when another fails, and the errors are joined. Objects without this
// installation's ownership mark are never changed or deleted.
func (r *GatewayReconciler) Reconcile(ctx context.Context) error {
	certs, err := r.certificates.Certificates(ctx)
	if err != nil {
		return fmt.Errorf("read certificates: %w", err)
	}
	domains, err := r.desired.GatewayDomains(ctx)
	if err != nil {
		return fmt.Errorf("read domains: %w", err)
	}
	namespace := r.cfg.Gateway.Namespace

	var errs []error
	secrets, err := r.syncTLSSecrets(ctx, namespace, certs)
	errs = append(errs, err)
	acme, err := r.syncCertManager(ctx, namespace, domains, certs)
	errs = append(errs, err)
	tls := domainTLS(certs, secrets, acme)

	main, err := r.gateways.GatewayV1().Gateways(namespace).Get(ctx, r.cfg.Gateway.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		r.logger.Warn("the main Gateway does not exist, so its listeners and the organizations' Gateways wait for it",
			"namespace", namespace, "name", r.cfg.Gateway.Name)
		return errors.Join(append(errs, fmt.Errorf("%w: %s", ErrGatewayNotFound, gatewayKey(r.cfg.Gateway)))...)
	}
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("read Gateway %s: %w", gatewayKey(r.cfg.Gateway), err))...)
	}

	if r.cfg.Routing.ManageListeners {
		applied, err := r.syncListeners(ctx, tls)
		errs = append(errs, err)
		if applied != nil {
			main = applied
		}
	}
	errs = append(errs, r.syncOrgGateways(ctx, main, domains, tls))
	return errors.Join(errs...)
}

// domainTLS maps each lower-cased domain that has a certificate to its
// listeners' TLS settings: an uploaded certificate whose Secret exists or
// was written, or else a cert-manager Certificate's Secret.
func domainTLS(certs []TLSCertificateSpec, secrets map[string]bool, acme map[string]DomainTLS) map[string]DomainTLS {
	tls := maps.Clone(acme)
	if tls == nil {
		tls = map[string]DomainTLS{}
	}
	for _, c := range certs {
		name := TLSSecretName(c.GUID)
		if secrets[name] {
			tls[dnsName(c.Domain)] = DomainTLS{Domain: dnsName(c.Domain), SecretName: name}
		}
	}
	return tls
}

// sortedTLS returns the values of tls sorted by domain, keeping those
// keep accepts.
func sortedTLS(tls map[string]DomainTLS, keep func(domain string) bool) []DomainTLS {
	var out []DomainTLS
	for _, domain := range slices.Sorted(maps.Keys(tls)) {
		if keep(domain) {
			out = append(out, tls[domain])
		}
	}
	return out
}

// syncTLSSecrets writes a TLS Secret for every certificate whose key
// opened, repairs Secrets that were changed, and deletes the Secrets of
// certificates that are gone. The Secret of a certificate whose key did
// not open is kept as it is. It returns the names of the Secrets that
// exist afterwards. Errors name Secrets, never their contents.
func (r *GatewayReconciler) syncTLSSecrets(ctx context.Context, namespace string, certs []TLSCertificateSpec) (map[string]bool, error) {
	api := r.client.CoreV1().Secrets(namespace)
	selector := labels.SelectorFromSet(ownerLabels(r.cfg.Installation, ComponentTLS)).String()
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list TLS Secrets in %s: %w", namespace, err)
	}
	current := map[string]*corev1.Secret{}
	for i := range list.Items {
		current[list.Items[i].Name] = &list.Items[i]
	}

	ready := map[string]bool{}
	wanted := map[string]bool{}
	var errs []error
	for _, cert := range certs {
		cert.Installation = r.cfg.Installation
		name := TLSSecretName(cert.GUID)
		wanted[name] = true
		if cert.PrivateKeyPEM == nil {
			ready[name] = current[name] != nil
			continue
		}
		if err := r.ensureTLSSecret(ctx, current[name], MakeTLSSecret(cert, namespace)); err != nil {
			errs = append(errs, err)
			continue
		}
		ready[name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(current)) {
		if !wanted[name] {
			errs = append(errs, r.deleteSecret(ctx, current[name]))
		}
	}
	return ready, errors.Join(errs...)
}

// ensureTLSSecret creates want, or updates current, the listed Secret or
// nil, to match it. A Secret whose type was changed is replaced, because
// the type is immutable.
func (r *GatewayReconciler) ensureTLSSecret(ctx context.Context, current, want *corev1.Secret) error {
	api := r.client.CoreV1().Secrets(want.Namespace)
	if current == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if err == nil {
			r.logger.Info("TLS Secret created", "namespace", want.Namespace, "name", want.Name,
				"domain", want.Annotations[AnnotationDomain])
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create TLS Secret %s/%s: %w", want.Namespace, want.Name, err)
		}
		existing, err := api.Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read TLS Secret %s/%s: %w", want.Namespace, want.Name, err)
		}
		if !ownedBy(existing.Labels, r.cfg.Installation) || existing.Labels[LabelComponent] != ComponentTLS {
			return &NotOwnedError{Kind: "Secret", Namespace: want.Namespace, Name: want.Name}
		}
		current = existing
	}

	if metadataCurrent(current.ObjectMeta, want.ObjectMeta) && current.Type == want.Type &&
		maps.EqualFunc(current.Data, want.Data, bytes.Equal) {
		return nil
	}
	if current.Type != want.Type {
		if err := r.deleteSecret(ctx, current); err != nil {
			return err
		}
		if _, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("replace TLS Secret %s/%s: %w", want.Namespace, want.Name, err)
		}
		r.logger.Info("TLS Secret replaced: its type had been changed", "namespace", want.Namespace, "name", want.Name)
		return nil
	}
	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Data = want.Data
	updated.StringData = nil
	if _, err := api.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update TLS Secret %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logger.Info("TLS Secret updated", "namespace", want.Namespace, "name", want.Name,
		"domain", want.Annotations[AnnotationDomain])
	return nil
}

// deleteSecret deletes a listed Secret, and not one that replaced it since
// it was listed.
func (r *GatewayReconciler) deleteSecret(ctx context.Context, s *corev1.Secret) error {
	uid := s.UID
	err := r.client.CoreV1().Secrets(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete TLS Secret %s/%s: %w", s.Namespace, s.Name, err)
	}
	r.logger.Info("TLS Secret deleted", "namespace", s.Namespace, "name", s.Name)
	return nil
}

// syncListeners applies the installation's listeners to the main Gateway
// (HTTPS per domain with a certificate, TCP per port) and to the UDP
// Gateway (UDP per port), which may be the same Gateway. It returns the
// main Gateway as the apply left it, or nil when it was not applied.
func (r *GatewayReconciler) syncListeners(ctx context.Context, tls map[string]DomainTLS) (*gatewayv1.Gateway, error) {
	routes, err := r.desired.PortRoutes(ctx)
	if err != nil {
		return nil, fmt.Errorf("read TCP and UDP routes: %w", err)
	}
	main := r.cfg.Gateway
	udp := r.cfg.Routing.UDPGateway
	if udp.Name == "" {
		udp = main
	}

	type plan struct {
		gw     GatewayRef
		tls    []DomainTLS
		routes []RouteSpec
	}
	plans := map[string]*plan{
		gatewayKey(main): {gw: main, tls: sortedTLS(tls, func(string) bool { return true })},
	}
	if _, ok := plans[gatewayKey(udp)]; !ok {
		plans[gatewayKey(udp)] = &plan{gw: udp}
	}
	for _, route := range routes {
		switch route.Protocol {
		case RouteProtocolTCP:
			plans[gatewayKey(main)].routes = append(plans[gatewayKey(main)].routes, route)
		case RouteProtocolUDP:
			plans[gatewayKey(udp)].routes = append(plans[gatewayKey(udp)].routes, route)
		}
	}

	var applied *gatewayv1.Gateway
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(plans)) {
		p := plans[key]
		listeners, err := MakeManagedListeners(p.tls, p.routes, p.gw, r.cfg.Installation)
		if errors.Is(err, ErrTooManyListeners) {
			errs = append(errs, err)
			continue
		}
		if err != nil {
			r.logger.Warn("routes left without a listener", "gateway", key, "error", err)
		}
		gw, err := r.applyListeners(ctx, p.gw, listeners)
		errs = append(errs, err)
		if key == gatewayKey(main) {
			applied = gw
		}
	}
	return applied, errors.Join(errs...)
}

// applyListeners sets the installation's listeners on gw by server-side
// apply with the installation's own field manager. It does not force, so
// a listener name that another manager set to other values is a conflict
// error and stays as it is.
func (r *GatewayReconciler) applyListeners(ctx context.Context, gw GatewayRef, listeners []gatewayv1.Listener) (*gatewayv1.Gateway, error) {
	api := r.gateways.GatewayV1().Gateways(gw.Namespace)
	current, err := api.Get(ctx, gw.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		r.logger.Warn("the Gateway does not exist, so its listeners wait for it", "namespace", gw.Namespace, "name", gw.Name)
		return nil, fmt.Errorf("%w: %s", ErrGatewayNotFound, gatewayKey(gw))
	}
	if err != nil {
		return nil, fmt.Errorf("read Gateway %s: %w", gatewayKey(gw), err)
	}

	patch, err := MakeListenerApply(gw, listeners)
	if err != nil {
		return nil, fmt.Errorf("encode the listeners of Gateway %s: %w", gatewayKey(gw), err)
	}
	updated, err := api.Patch(ctx, gw.Name, types.ApplyPatchType, patch,
		metav1.PatchOptions{FieldManager: ListenerFieldManager(r.cfg.Installation)})
	if err != nil {
		return nil, fmt.Errorf("apply the listeners of Gateway %s: %w", gatewayKey(gw), err)
	}
	if updated.ResourceVersion != current.ResourceVersion {
		r.logger.Info("Gateway listeners applied", "namespace", gw.Namespace, "name", gw.Name,
			"installation_listeners", len(listeners), "listeners", len(updated.Spec.Listeners))
	}
	return updated, nil
}

// syncOrgGateways creates or updates the Gateway of every organization
// with a dedicated gateway, and deletes the installation's other
// organization Gateways.
func (r *GatewayReconciler) syncOrgGateways(ctx context.Context, main *gatewayv1.Gateway, domains []GatewayDomainSpec, tls map[string]DomainTLS) error {
	orgs, err := r.desired.DedicatedGatewayOrgs(ctx)
	if err != nil {
		return fmt.Errorf("read organizations with a dedicated gateway: %w", err)
	}
	owner := map[string]string{}
	for _, d := range domains {
		if d.OrgGUID != "" {
			owner[dnsName(d.Name)] = d.OrgGUID
		}
	}

	api := r.gateways.GatewayV1().Gateways(main.Namespace)
	selector := labels.SelectorFromSet(ownerLabels(r.cfg.Installation, ComponentGateway)).String()
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list organization Gateways in %s: %w", main.Namespace, err)
	}
	current := map[string]*gatewayv1.Gateway{}
	for i := range list.Items {
		current[list.Items[i].Name] = &list.Items[i]
	}

	var errs []error
	wanted := map[string]bool{}
	for _, org := range orgs {
		// A Gateway that cannot be made is kept as it is, not deleted.
		wanted[OrgGatewayName(org)] = true
		want, err := MakeOrgGateway(OrgGatewaySpec{
			OrgGUID: org, Installation: r.cfg.Installation, Main: main, Class: r.cfg.Routing.OrgGatewayClass,
			TLS:       sortedTLS(tls, func(domain string) bool { return owner[domain] == org }),
			HTTPSPort: r.cfg.Gateway.HTTPSPort,
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, r.ensureOrgGateway(ctx, current[want.Name], want))
	}
	for _, name := range slices.Sorted(maps.Keys(current)) {
		if !wanted[name] {
			errs = append(errs, r.deleteOrgGateway(ctx, current[name]))
		}
	}
	return errors.Join(errs...)
}

// ensureOrgGateway creates want, or updates current, the listed Gateway or
// nil, to match it. Ferry owns the whole spec, but fields the API server
// defaults, or that others set and want leaves out, do not count as
// changes.
func (r *GatewayReconciler) ensureOrgGateway(ctx context.Context, current, want *gatewayv1.Gateway) error {
	api := r.gateways.GatewayV1().Gateways(want.Namespace)
	if current == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if err == nil {
			r.logger.Info("organization Gateway created", "namespace", want.Namespace, "name", want.Name,
				"org", want.Labels[LabelOrgGUID])
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Gateway %s/%s: %w", want.Namespace, want.Name, err)
		}
		existing, err := api.Get(ctx, want.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read Gateway %s/%s: %w", want.Namespace, want.Name, err)
		}
		if !ownedBy(existing.Labels, r.cfg.Installation) || existing.Labels[LabelComponent] != ComponentGateway {
			return &NotOwnedError{Kind: "Gateway", Namespace: want.Namespace, Name: want.Name}
		}
		current = existing
	}

	if metadataCurrent(current.ObjectMeta, want.ObjectMeta) && covers(want.Spec, current.Spec) {
		return nil
	}
	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Spec = want.Spec
	if _, err := api.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update Gateway %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logger.Info("organization Gateway updated", "namespace", want.Namespace, "name", want.Name,
		"org", want.Labels[LabelOrgGUID])
	return nil
}

func (r *GatewayReconciler) deleteOrgGateway(ctx context.Context, gw *gatewayv1.Gateway) error {
	uid := gw.UID
	err := r.gateways.GatewayV1().Gateways(gw.Namespace).Delete(ctx, gw.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete Gateway %s/%s: %w", gw.Namespace, gw.Name, err)
	}
	r.logger.Info("organization Gateway deleted: the organization has no dedicated gateway any more",
		"namespace", gw.Namespace, "name", gw.Name, "org", gw.Labels[LabelOrgGUID])
	return nil
}

// syncCertManager writes a cert-manager Certificate for every domain with
// AnnotationClusterIssuer and no uploaded certificate, and deletes the
// installation's other Certificates. It returns the TLS settings of those
// domains, keyed by lower-cased domain. The listeners reference the
// Secret before cert-manager has issued it, so they serve TLS only once
// it has. Without the Certificate API (cert-manager not installed, or no
// dynamic client) it logs that once and returns nothing.
func (r *GatewayReconciler) syncCertManager(ctx context.Context, namespace string, domains []GatewayDomainSpec, certs []TLSCertificateSpec) (map[string]DomainTLS, error) {
	uploaded := map[string]bool{}
	for _, c := range certs {
		uploaded[dnsName(c.Domain)] = true
	}
	want := map[string]*unstructured.Unstructured{}
	tls := map[string]DomainTLS{}
	for _, d := range domains {
		domain := dnsName(d.Name)
		if d.ClusterIssuer == "" || uploaded[domain] {
			continue
		}
		cert := MakeCertManagerCertificate(domain, d.ClusterIssuer, namespace, r.cfg.Installation)
		want[cert.GetName()] = cert
		tls[domain] = DomainTLS{Domain: domain, SecretName: ACMESecretName(domain)}
	}

	served, err := r.certManagerServed()
	if err != nil {
		return nil, err
	}
	if !served {
		if !r.certManagerAbsent && len(want) > 0 {
			r.logger.Info("cert-manager's Certificate API is not served, so domains with a cluster issuer get no certificate",
				"domains", len(want))
		}
		r.certManagerAbsent = true
		return nil, nil
	}
	r.certManagerAbsent = false

	api := r.dynamic.Resource(CertManagerCertificateGVR).Namespace(namespace)
	selector := labels.SelectorFromSet(ownerLabels(r.cfg.Installation, ComponentGateway)).String()
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, fmt.Errorf("list cert-manager Certificates in %s: %w", namespace, err)
	}
	current := map[string]*unstructured.Unstructured{}
	for i := range list.Items {
		current[list.Items[i].GetName()] = &list.Items[i]
	}

	var errs []error
	for _, name := range slices.Sorted(maps.Keys(want)) {
		errs = append(errs, r.ensureCertManagerCertificate(ctx, api, current[name], want[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(current)) {
		if _, ok := want[name]; ok {
			continue
		}
		uid := current[name].GetUID()
		err := api.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		switch {
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		case err != nil:
			errs = append(errs, fmt.Errorf("delete cert-manager Certificate %s/%s: %w", namespace, name, err))
		default:
			r.logger.Info("cert-manager Certificate deleted", "namespace", namespace, "name", name)
		}
	}
	return tls, errors.Join(errs...)
}

// certManagerServed reports whether the API server serves cert-manager's
// Certificate resource.
func (r *GatewayReconciler) certManagerServed() (bool, error) {
	if r.dynamic == nil {
		return false, nil
	}
	resources, err := r.client.Discovery().ServerResourcesForGroupVersion(CertManagerCertificateGVR.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover cert-manager's API: %w", err)
	}
	for _, res := range resources.APIResources {
		if res.Name == CertManagerCertificateGVR.Resource {
			return true, nil
		}
	}
	return false, nil
}

func (r *GatewayReconciler) ensureCertManagerCertificate(ctx context.Context, api dynamic.ResourceInterface, current, want *unstructured.Unstructured) error {
	name := want.GetNamespace() + "/" + want.GetName()
	if current == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if err == nil {
			r.logger.Info("cert-manager Certificate created", "name", name,
				"domain", want.GetAnnotations()[AnnotationDomain])
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create cert-manager Certificate %s: %w", name, err)
		}
		existing, err := api.Get(ctx, want.GetName(), metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read cert-manager Certificate %s: %w", name, err)
		}
		if !ownedBy(existing.GetLabels(), r.cfg.Installation) || existing.GetLabels()[LabelComponent] != ComponentGateway {
			return &NotOwnedError{Kind: "Certificate", Namespace: want.GetNamespace(), Name: want.GetName()}
		}
		current = existing
	}

	currentMeta := metav1.ObjectMeta{Labels: current.GetLabels(), Annotations: current.GetAnnotations()}
	wantMeta := metav1.ObjectMeta{Labels: want.GetLabels(), Annotations: want.GetAnnotations()}
	if metadataCurrent(currentMeta, wantMeta) && covers(want.Object["spec"], current.Object["spec"]) {
		return nil
	}
	updated := current.DeepCopy()
	mergeMetadata(&currentMeta, wantMeta)
	updated.SetLabels(currentMeta.Labels)
	updated.SetAnnotations(currentMeta.Annotations)
	updated.Object["spec"] = want.Object["spec"]
	if _, err := api.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update cert-manager Certificate %s: %w", name, err)
	}
	r.logger.Info("cert-manager Certificate updated", "name", name, "domain", want.GetAnnotations()[AnnotationDomain])
	return nil
}
