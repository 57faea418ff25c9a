package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
	gatewayinformers "sigs.k8s.io/gateway-api/pkg/client/informers/externalversions"
)

// Controller keeps one Proxy per accepted UDP listener of the Gateways of
// its GatewayClasses and writes their status. Every change to a watched
// object, and a periodic resync, runs one sync over the whole state.
type Controller struct {
	kube           kubernetes.Interface
	gateway        gatewayclient.Interface
	controllerName gatewayv1.GatewayController
	proxyOptions   ProxyOptions
	resync         time.Duration
	log            *slog.Logger

	kubeInformers    informers.SharedInformerFactory
	gatewayInformers gatewayinformers.SharedInformerFactory

	proxies map[int32]*Proxy
	// openErrors records why a listener's port could not be opened.
	openErrors map[int32]error
	trigger    chan struct{}
}

// NewController sets up the informers, and Run starts them.
func NewController(kube kubernetes.Interface, gateway gatewayclient.Interface, controllerName string, opts ProxyOptions, resync time.Duration, log *slog.Logger) *Controller {
	c := &Controller{
		kube:             kube,
		gateway:          gateway,
		controllerName:   gatewayv1.GatewayController(controllerName),
		proxyOptions:     opts,
		resync:           resync,
		log:              log,
		kubeInformers:    informers.NewSharedInformerFactory(kube, resync),
		gatewayInformers: gatewayinformers.NewSharedInformerFactory(gateway, resync),
		proxies:          map[int32]*Proxy{},
		openErrors:       map[int32]error{},
		trigger:          make(chan struct{}, 1),
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueue() },
		UpdateFunc: func(any, any) { c.enqueue() },
		DeleteFunc: func(any) { c.enqueue() },
	}
	for _, informer := range []cache.SharedIndexInformer{
		c.kubeInformers.Core().V1().Services().Informer(),
		c.kubeInformers.Core().V1().Namespaces().Informer(),
		c.kubeInformers.Discovery().V1().EndpointSlices().Informer(),
		c.gatewayInformers.Gateway().V1().GatewayClasses().Informer(),
		c.gatewayInformers.Gateway().V1().Gateways().Informer(),
		c.gatewayInformers.Gateway().V1alpha2().UDPRoutes().Informer(),
	} {
		if _, err := informer.AddEventHandler(handler); err != nil {
			// client-go v0.37.2 returns an error from AddEventHandler only
			// for an informer that has stopped, and these have not started.
			panic(err)
		}
	}
	return c
}

func (c *Controller) enqueue() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Run syncs until ctx ends, then closes every listener.
func (c *Controller) Run(ctx context.Context) error {
	c.kubeInformers.Start(ctx.Done())
	c.gatewayInformers.Start(ctx.Done())
	for typ, ok := range c.kubeInformers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer cache for %v did not sync", typ)
		}
	}
	for typ, ok := range c.gatewayInformers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer cache for %v did not sync", typ)
		}
	}
	c.log.Info("informer caches synced", "controller_name", c.controllerName)

	defer c.closeAll()
	ticker := time.NewTicker(c.resync)
	defer ticker.Stop()
	c.enqueue()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-c.trigger:
			// Events come in bursts, such as an EndpointSlice and a Service
			// together, so wait briefly to handle them in one sync.
			time.Sleep(100 * time.Millisecond)
		}
		if err := c.sync(ctx); err != nil {
			c.log.Error("sync failed, retrying at the next change or resync", "error", err)
		}
	}
}

func (c *Controller) closeAll() {
	for port, p := range c.proxies {
		p.Close()
		delete(c.proxies, port)
	}
}

func (c *Controller) world() (World, error) {
	var w World
	var err error
	w.ControllerName = c.controllerName
	w.AllowedCIDR = c.proxyOptions.AllowedCIDR
	if w.Classes, err = c.gatewayInformers.Gateway().V1().GatewayClasses().Lister().List(labels.Everything()); err != nil {
		return w, err
	}
	if w.Gateways, err = c.gatewayInformers.Gateway().V1().Gateways().Lister().List(labels.Everything()); err != nil {
		return w, err
	}
	if w.Routes, err = c.gatewayInformers.Gateway().V1alpha2().UDPRoutes().Lister().List(labels.Everything()); err != nil {
		return w, err
	}
	if w.Services, err = c.kubeInformers.Core().V1().Services().Lister().List(labels.Everything()); err != nil {
		return w, err
	}
	if w.EndpointSlices, err = c.kubeInformers.Discovery().V1().EndpointSlices().Lister().List(labels.Everything()); err != nil {
		return w, err
	}
	namespaces, err := c.kubeInformers.Core().V1().Namespaces().Lister().List(labels.Everything())
	if err != nil {
		return w, err
	}
	w.NamespaceLabels = map[string]map[string]string{}
	for _, ns := range namespaces {
		w.NamespaceLabels[ns.Name] = ns.Labels
	}
	return w, nil
}

// sync opens and closes listeners to match the plan, hands each its
// backends, then writes the status of every object in the plan.
func (c *Controller) sync(ctx context.Context) error {
	w, err := c.world()
	if err != nil {
		return fmt.Errorf("list from informer caches: %w", err)
	}
	plan := resolve(w)
	c.applyListeners(plan)

	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	for _, name := range plan.Classes {
		keep(c.writeClassStatus(ctx, name))
	}
	for _, gp := range plan.Gateways {
		keep(c.writeGatewayStatus(ctx, gp))
	}
	planned := map[types.NamespacedName]bool{}
	for _, rp := range plan.Routes {
		planned[rp.Route] = true
		keep(c.writeRouteStatus(ctx, rp))
	}
	// A route no longer attached to a Gateway of this controller loses the
	// parent entries this controller wrote.
	for _, r := range w.Routes {
		name := types.NamespacedName{Namespace: r.Namespace, Name: r.Name}
		if !planned[name] && c.hasOurParentStatus(r.Status.Parents) {
			keep(c.writeRouteStatus(ctx, RoutePlan{Route: name, Generation: r.Generation}))
		}
	}
	return firstErr
}

func (c *Controller) applyListeners(plan Plan) {
	for port, p := range c.proxies {
		if _, ok := plan.Listeners[port]; !ok {
			p.Close()
			delete(c.proxies, port)
			c.log.Info("closed listener", "port", port)
		}
	}
	for port := range c.openErrors {
		if _, ok := plan.Listeners[port]; !ok {
			delete(c.openErrors, port)
		}
	}
	for port, lp := range plan.Listeners {
		p, ok := c.proxies[port]
		if !ok {
			var err error
			p, err = Listen(int(port), c.proxyOptions)
			if err != nil {
				if c.openErrors[port] == nil {
					c.log.Error("open listener failed", "gateway", lp.Gateway.String(), "listener", lp.Listener, "error", err)
				}
				c.openErrors[port] = err
				continue
			}
			delete(c.openErrors, port)
			c.proxies[port] = p
			c.log.Info("opened listener", "gateway", lp.Gateway.String(), "listener", lp.Listener, "address", p.Addr().String())
		}
		p.SetBackends(lp.Backends)
	}
}

func condition(typ string, ok bool, reason, message string, generation int64) metav1.Condition {
	status := metav1.ConditionTrue
	if !ok {
		status = metav1.ConditionFalse
	}
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: generation}
}

func (c *Controller) writeClassStatus(ctx context.Context, name string) error {
	class, err := c.gatewayInformers.Gateway().V1().GatewayClasses().Lister().Get(name)
	if err != nil {
		return nil // deleted since the plan was made
	}
	updated := class.DeepCopy()
	meta.SetStatusCondition(&updated.Status.Conditions, condition(string(gatewayv1.GatewayClassConditionStatusAccepted), true,
		string(gatewayv1.GatewayClassReasonAccepted), "served by hack/udpgateway", class.Generation))
	if equality.Semantic.DeepEqual(class.Status, updated.Status) {
		return nil
	}
	if _, err := c.gateway.GatewayV1().GatewayClasses().UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("update status of GatewayClass %s: %w", name, err)
	}
	return nil
}

// fieldManager names this program in the managed fields of what it writes.
const fieldManager = "ferry-udpgateway"

func (c *Controller) writeGatewayStatus(ctx context.Context, gp GatewayPlan) error {
	gw, err := c.gatewayInformers.Gateway().V1().Gateways().Lister().Gateways(gp.Gateway.Namespace).Get(gp.Gateway.Name)
	if err != nil {
		return nil // deleted since the plan was made
	}
	updated := gw.DeepCopy()
	gen := gw.Generation

	programmed, invalid := 0, 0
	var listeners []gatewayv1.ListenerStatus
	for _, lr := range gp.Listeners {
		var old []metav1.Condition
		for _, ls := range gw.Status.Listeners {
			if ls.Name == lr.Name {
				old = ls.Conditions
			}
		}
		conds := append([]metav1.Condition(nil), old...)
		ls := gatewayv1.ListenerStatus{
			Name:           lr.Name,
			AttachedRoutes: lr.AttachedRoutes,
			SupportedKinds: []gatewayv1.RouteGroupKind{{Group: ptr(gatewayv1.Group(gatewayv1.GroupName)), Kind: "UDPRoute"}},
		}
		openErr := c.openErrors[lr.Port]
		switch {
		case lr.Reason == gatewayv1.ListenerReasonProtocolConflict:
			invalid++
			meta.SetStatusCondition(&conds, condition("Accepted", true, string(gatewayv1.ListenerReasonAccepted), "", gen))
			meta.SetStatusCondition(&conds, condition("Conflicted", true, string(lr.Reason), lr.Message, gen))
			meta.SetStatusCondition(&conds, condition("Programmed", false, string(gatewayv1.ListenerReasonInvalid), lr.Message, gen))
		case lr.Reason != "":
			invalid++
			if lr.Reason == gatewayv1.ListenerReasonUnsupportedProtocol {
				ls.SupportedKinds = []gatewayv1.RouteGroupKind{}
			}
			meta.SetStatusCondition(&conds, condition("Accepted", false, string(lr.Reason), lr.Message, gen))
			meta.SetStatusCondition(&conds, condition("Conflicted", false, string(gatewayv1.ListenerReasonNoConflicts), "", gen))
			meta.SetStatusCondition(&conds, condition("Programmed", false, string(gatewayv1.ListenerReasonInvalid), lr.Message, gen))
		case openErr != nil:
			meta.SetStatusCondition(&conds, condition("Accepted", false, string(gatewayv1.ListenerReasonPortUnavailable), openErr.Error(), gen))
			meta.SetStatusCondition(&conds, condition("Conflicted", false, string(gatewayv1.ListenerReasonNoConflicts), "", gen))
			meta.SetStatusCondition(&conds, condition("Programmed", false, string(gatewayv1.ListenerReasonPending), openErr.Error(), gen))
		default:
			programmed++
			meta.SetStatusCondition(&conds, condition("Accepted", true, string(gatewayv1.ListenerReasonAccepted), "", gen))
			meta.SetStatusCondition(&conds, condition("Conflicted", false, string(gatewayv1.ListenerReasonNoConflicts), "", gen))
			meta.SetStatusCondition(&conds, condition("Programmed", true, string(gatewayv1.ListenerReasonProgrammed), fmt.Sprintf("listening on UDP %s:%d", bindAddress, lr.Port), gen))
		}
		meta.SetStatusCondition(&conds, condition("ResolvedRefs", true, string(gatewayv1.ListenerReasonResolvedRefs), "", gen))
		ls.Conditions = conds
		listeners = append(listeners, ls)
	}
	updated.Status.Listeners = listeners
	updated.Status.Addresses = []gatewayv1.GatewayStatusAddress{{Type: ptr(gatewayv1.IPAddressType), Value: bindAddress.String()}}

	// Listeners that were not accepted have their own status and do not
	// keep the Gateway from being Programmed.
	valid := len(gp.Listeners) - invalid
	meta.SetStatusCondition(&updated.Status.Conditions, condition("Accepted", true, string(gatewayv1.GatewayReasonAccepted), "", gen))
	if programmed < valid {
		meta.SetStatusCondition(&updated.Status.Conditions, condition("Programmed", false, string(gatewayv1.GatewayReasonPending),
			fmt.Sprintf("%d of %d accepted listeners are listening", programmed, valid), gen))
	} else {
		meta.SetStatusCondition(&updated.Status.Conditions, condition("Programmed", true, string(gatewayv1.GatewayReasonProgrammed), "", gen))
	}
	if equality.Semantic.DeepEqual(gw.Status, updated.Status) {
		return nil
	}
	if _, err := c.gateway.GatewayV1().Gateways(gw.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("update status of Gateway %s: %w", gp.Gateway, err)
	}
	return nil
}

func (c *Controller) writeRouteStatus(ctx context.Context, rp RoutePlan) error {
	route, err := c.gatewayInformers.Gateway().V1alpha2().UDPRoutes().Lister().UDPRoutes(rp.Route.Namespace).Get(rp.Route.Name)
	if err != nil {
		return nil // deleted since the plan was made
	}
	updated := route.DeepCopy()
	gen := route.Generation

	// Entries of other controllers stay, and this controller's are rebuilt.
	var parents []gatewayv1.RouteParentStatus
	var ours []gatewayv1.RouteParentStatus
	for _, ps := range route.Status.Parents {
		if ps.ControllerName == c.controllerName {
			ours = append(ours, ps)
		} else {
			parents = append(parents, ps)
		}
	}
	for _, pr := range rp.Parents {
		var conds []metav1.Condition
		for _, ps := range ours {
			if equality.Semantic.DeepEqual(ps.ParentRef, pr.Ref) {
				conds = append(conds, ps.Conditions...)
			}
		}
		if pr.AcceptedReason == "" {
			meta.SetStatusCondition(&conds, condition("Accepted", true, string(gatewayv1.RouteReasonAccepted), "", gen))
		} else {
			meta.SetStatusCondition(&conds, condition("Accepted", false, string(pr.AcceptedReason), pr.AcceptedMessage, gen))
		}
		if pr.ResolvedRefsReason == "" {
			meta.SetStatusCondition(&conds, condition("ResolvedRefs", true, string(gatewayv1.RouteReasonResolvedRefs), "", gen))
		} else {
			meta.SetStatusCondition(&conds, condition("ResolvedRefs", false, string(pr.ResolvedRefsReason), pr.ResolvedRefsMessage, gen))
		}
		parents = append(parents, gatewayv1.RouteParentStatus{ParentRef: pr.Ref, ControllerName: c.controllerName, Conditions: conds})
	}
	updated.Status.Parents = parents
	if equality.Semantic.DeepEqual(route.Status, updated.Status) {
		return nil
	}
	if _, err := c.gateway.GatewayV1alpha2().UDPRoutes(route.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("update status of UDPRoute %s: %w", rp.Route, err)
	}
	return nil
}

func (c *Controller) hasOurParentStatus(parents []gatewayv1.RouteParentStatus) bool {
	for _, ps := range parents {
		if ps.ControllerName == c.controllerName {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// parseAllowedCIDR parses the --allowed-cidr value, which must be an IPv4
// prefix.
func parseAllowedCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid --allowed-cidr %q: %w", s, err)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("invalid --allowed-cidr %q: only IPv4 ranges are supported", s)
	}
	return p.Masked(), nil
}
