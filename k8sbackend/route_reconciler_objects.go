package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1alpha2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gatewayclient "sigs.k8s.io/gateway-api/pkg/client/clientset/versioned"
)

// typedClient is the part of a client-go typed client for one namespace
// that the route reconciler uses. T is the object pointer type and L the
// list pointer type.
type typedClient[T, L any] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
	Delete(context.Context, string, metav1.DeleteOptions) error
	Get(context.Context, string, metav1.GetOptions) (T, error)
	List(context.Context, metav1.ListOptions) (L, error)
}

// objectKind describes one kind of object that the route reconciler keeps
// in space namespaces, so that syncObjects creates, repairs and deletes
// every kind the same way.
type objectKind[T metav1.Object, L any] struct {
	// name is the kind as logs and errors show it.
	name string
	// component is the LabelComponent value of the kind's objects.
	component string
	client    func(namespace string) typedClient[T, L]
	items     func(L) []T
	// sameSpec reports whether current has want's spec, the part of the
	// object besides metadata that Ferry owns.
	sameSpec func(current, want T) bool
	// withSpec returns a copy of current with want's spec.
	withSpec func(current, want T) T
}

func httpRouteKind(gateways gatewayclient.Interface) objectKind[*gatewayv1.HTTPRoute, *gatewayv1.HTTPRouteList] {
	return objectKind[*gatewayv1.HTTPRoute, *gatewayv1.HTTPRouteList]{
		name: "HTTPRoute", component: ComponentRouting,
		client: func(ns string) typedClient[*gatewayv1.HTTPRoute, *gatewayv1.HTTPRouteList] {
			return gateways.GatewayV1().HTTPRoutes(ns)
		},
		items: func(l *gatewayv1.HTTPRouteList) []*gatewayv1.HTTPRoute { return pointers(l.Items) },
		sameSpec: func(current, want *gatewayv1.HTTPRoute) bool {
			return equality.Semantic.DeepEqual(current.Spec, want.Spec)
		},
		withSpec: func(current, want *gatewayv1.HTTPRoute) *gatewayv1.HTTPRoute {
			updated := current.DeepCopy()
			updated.Spec = want.Spec
			return updated
		},
	}
}

func tcpRouteKind(gateways gatewayclient.Interface) objectKind[*gatewayv1alpha2.TCPRoute, *gatewayv1alpha2.TCPRouteList] {
	return objectKind[*gatewayv1alpha2.TCPRoute, *gatewayv1alpha2.TCPRouteList]{
		name: "TCPRoute", component: ComponentRouting,
		client: func(ns string) typedClient[*gatewayv1alpha2.TCPRoute, *gatewayv1alpha2.TCPRouteList] {
			return gateways.GatewayV1alpha2().TCPRoutes(ns)
		},
		items: func(l *gatewayv1alpha2.TCPRouteList) []*gatewayv1alpha2.TCPRoute { return pointers(l.Items) },
		sameSpec: func(current, want *gatewayv1alpha2.TCPRoute) bool {
			return equality.Semantic.DeepEqual(current.Spec, want.Spec)
		},
		withSpec: func(current, want *gatewayv1alpha2.TCPRoute) *gatewayv1alpha2.TCPRoute {
			updated := current.DeepCopy()
			updated.Spec = want.Spec
			return updated
		},
	}
}

func udpRouteKind(gateways gatewayclient.Interface) objectKind[*gatewayv1alpha2.UDPRoute, *gatewayv1alpha2.UDPRouteList] {
	return objectKind[*gatewayv1alpha2.UDPRoute, *gatewayv1alpha2.UDPRouteList]{
		name: "UDPRoute", component: ComponentRouting,
		client: func(ns string) typedClient[*gatewayv1alpha2.UDPRoute, *gatewayv1alpha2.UDPRouteList] {
			return gateways.GatewayV1alpha2().UDPRoutes(ns)
		},
		items: func(l *gatewayv1alpha2.UDPRouteList) []*gatewayv1alpha2.UDPRoute { return pointers(l.Items) },
		sameSpec: func(current, want *gatewayv1alpha2.UDPRoute) bool {
			return equality.Semantic.DeepEqual(current.Spec, want.Spec)
		},
		withSpec: func(current, want *gatewayv1alpha2.UDPRoute) *gatewayv1alpha2.UDPRoute {
			updated := current.DeepCopy()
			updated.Spec = want.Spec
			return updated
		},
	}
}

func ingressKind(client kubernetes.Interface) objectKind[*networkingv1.Ingress, *networkingv1.IngressList] {
	return objectKind[*networkingv1.Ingress, *networkingv1.IngressList]{
		name: "Ingress", component: ComponentRouting,
		client: func(ns string) typedClient[*networkingv1.Ingress, *networkingv1.IngressList] {
			return client.NetworkingV1().Ingresses(ns)
		},
		items: func(l *networkingv1.IngressList) []*networkingv1.Ingress { return pointers(l.Items) },
		sameSpec: func(current, want *networkingv1.Ingress) bool {
			return equality.Semantic.DeepEqual(current.Spec, want.Spec)
		},
		withSpec: func(current, want *networkingv1.Ingress) *networkingv1.Ingress {
			updated := current.DeepCopy()
			updated.Spec = want.Spec
			return updated
		},
	}
}

// tlsSecretKind is the kind of the certificate Secrets that Ingresses in
// space namespaces read. Their type is immutable and always
// kubernetes.io/tls, so only the data is compared and copied.
func tlsSecretKind(client kubernetes.Interface) objectKind[*corev1.Secret, *corev1.SecretList] {
	return objectKind[*corev1.Secret, *corev1.SecretList]{
		name: "Secret", component: ComponentTLS,
		client: func(ns string) typedClient[*corev1.Secret, *corev1.SecretList] {
			return client.CoreV1().Secrets(ns)
		},
		items: func(l *corev1.SecretList) []*corev1.Secret { return pointers(l.Items) },
		sameSpec: func(current, want *corev1.Secret) bool {
			return current.Type == want.Type && equality.Semantic.DeepEqual(current.Data, want.Data)
		},
		withSpec: func(current, want *corev1.Secret) *corev1.Secret {
			updated := current.DeepCopy()
			updated.Data = want.Data
			updated.StringData = nil
			return updated
		},
	}
}

func pointers[E any](items []E) []*E {
	out := make([]*E, 0, len(items))
	for i := range items {
		out = append(out, &items[i])
	}
	return out
}

// objectSync is the desired state of one kind in one namespace, as
// syncObjects writes it.
type objectSync[T metav1.Object] struct {
	// want contains the objects to create or update, by name.
	want map[string]T
	// keep names objects that stay as they are, neither updated nor
	// deleted, for example a TLS Secret whose key cannot be opened.
	keep map[string]bool
}

// syncObjects brings the objects of kind in namespace that carry this
// installation's ownership labels and kind's component in line with
// desired: it creates the missing ones, repairs those that differ and
// deletes the rest. Objects without those labels are never changed or
// deleted; one that has a wanted name is reported as a *NotOwnedError.
func syncObjects[T metav1.Object, L any](ctx context.Context, r *RouteReconciler, kind objectKind[T, L], namespace string,
	desired objectSync[T]) error {
	api := kind.client(namespace)
	selector := labels.SelectorFromSet(ownerLabels(r.installation, kind.component)).String()
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if apierrors.IsNotFound(err) && len(desired.want) == 0 {
		// The API server does not serve the kind, for example TCPRoute
		// without Gateway API's experimental CRDs, and none is needed.
		return nil
	}
	if err != nil {
		return fmt.Errorf("list %ss in %s: %w", kind.name, namespace, err)
	}
	current := map[string]T{}
	for _, obj := range kind.items(list) {
		current[obj.GetName()] = obj
	}

	var errs []error
	for _, name := range slices.Sorted(maps.Keys(desired.want)) {
		existing, found := current[name]
		errs = append(errs, ensureObject(ctx, r, kind, api, existing, found, desired.want[name]))
	}
	for _, name := range slices.Sorted(maps.Keys(current)) {
		if _, wanted := desired.want[name]; wanted || desired.keep[name] {
			continue
		}
		errs = append(errs, deleteObject(ctx, r, kind, api, current[name]))
	}
	return errors.Join(errs...)
}

// ensureObject creates want, or updates current when found, to match it.
// Ferry owns the whole spec, so changes made by others are replaced.
func ensureObject[T metav1.Object, L any](ctx context.Context, r *RouteReconciler, kind objectKind[T, L],
	api typedClient[T, L], current T, found bool, want T) error {
	namespace, name := want.GetNamespace(), want.GetName()
	if !found {
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			r.logger.Info(kind.name+" created", "namespace", namespace, "name", name,
				"route", want.GetAnnotations()[AnnotationRouteURL])
			return nil
		case !apierrors.IsAlreadyExists(err):
			return fmt.Errorf("create %s %s/%s: %w", kind.name, namespace, name, err)
		}
		// The list left it out: it lacks Ferry's labels, or it was
		// created since.
		existing, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("read %s %s/%s: %w", kind.name, namespace, name, err)
		}
		if !ownedBy(existing.GetLabels(), r.installation) || existing.GetLabels()[LabelComponent] != kind.component {
			return &NotOwnedError{Kind: kind.name, Namespace: namespace, Name: name}
		}
		current = existing
	}

	currentMeta := metav1.ObjectMeta{Labels: current.GetLabels(), Annotations: current.GetAnnotations()}
	wantMeta := metav1.ObjectMeta{Labels: want.GetLabels(), Annotations: want.GetAnnotations()}
	if metadataCurrent(currentMeta, wantMeta) && kind.sameSpec(current, want) {
		return nil
	}
	updated := kind.withSpec(current, want)
	merged := metav1.ObjectMeta{Labels: updated.GetLabels(), Annotations: updated.GetAnnotations()}
	mergeMetadata(&merged, wantMeta)
	updated.SetLabels(merged.Labels)
	updated.SetAnnotations(merged.Annotations)
	if _, err := api.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update %s %s/%s: %w", kind.name, namespace, name, err)
	}
	r.logger.Info(kind.name+" updated", "namespace", namespace, "name", name,
		"route", want.GetAnnotations()[AnnotationRouteURL])
	return nil
}

// deleteObject deletes a stale object, and not one that replaced it since
// it was listed.
func deleteObject[T metav1.Object, L any](ctx context.Context, r *RouteReconciler, kind objectKind[T, L],
	api typedClient[T, L], obj T) error {
	uid := obj.GetUID()
	err := api.Delete(ctx, obj.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s %s/%s: %w", kind.name, obj.GetNamespace(), obj.GetName(), err)
	}
	r.logger.Info(kind.name+" deleted: no route with a destination in the namespace needs it",
		"namespace", obj.GetNamespace(), "name", obj.GetName())
	return nil
}
