package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// internalRouteSliceNames returns the names of the EndpointSlices that
// route needs, one per destination process. They depend only on the
// route's host, domain and destinations, so a sync can tell stale slices
// apart even when writing the wanted ones failed.
func internalRouteSliceNames(route InternalRouteSpec) []string {
	service, err := InternalRouteServiceName(route.Route.Host, route.Route.Domain)
	if err != nil {
		return nil
	}
	var names []string
	for _, d := range route.Route.Destinations {
		name := InternalRouteEndpointSliceName(service, d.ProcessGUID)
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// ensureService creates want, or updates current, the listed Service or
// nil, to match it. Ferry owns the selector, ports, type and cluster IP,
// so changes made by others are replaced. A Service that got a cluster IP
// is deleted and created again, because the cluster IP is immutable.
func (r *InternalRouteReconciler) ensureService(ctx context.Context, current, want *corev1.Service) error {
	api := r.client.CoreV1().Services(want.Namespace)
	if current == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			existing, getErr := api.Get(ctx, want.Name, metav1.GetOptions{})
			if getErr != nil {
				return fmt.Errorf("read Service %s/%s: %w", want.Namespace, want.Name, getErr)
			}
			if !ownedBy(existing.Labels, r.installation) || existing.Labels[LabelComponent] != ComponentRouting {
				return &NotOwnedError{Kind: "Service", Namespace: want.Namespace, Name: want.Name}
			}
			current = existing
		} else if err != nil {
			return fmt.Errorf("create Service %s/%s: %w", want.Namespace, want.Name, err)
		} else {
			r.logger.Info("internal route Service created", "namespace", want.Namespace, "name", want.Name,
				"route", want.Labels[LabelRouteGUID])
			return nil
		}
	}

	if current.Spec.ClusterIP != corev1.ClusterIPNone {
		if err := r.deleteService(ctx, current); err != nil {
			return err
		}
		if _, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("create Service %s/%s again without a cluster IP: %w", want.Namespace, want.Name, err)
		}
		return nil
	}
	if metadataCurrent(current.ObjectMeta, want.ObjectMeta) && current.Spec.Type == want.Spec.Type &&
		len(current.Spec.Selector) == 0 && len(current.Spec.Ports) == 0 {
		return nil
	}
	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Spec.Type = want.Spec.Type
	updated.Spec.Selector = want.Spec.Selector
	updated.Spec.Ports = want.Spec.Ports
	if _, err := api.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update Service %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logger.Info("internal route Service updated", "namespace", want.Namespace, "name", want.Name,
		"route", want.Labels[LabelRouteGUID])
	return nil
}

// deleteService deletes a stale Service, and not one that replaced it
// since it was listed.
func (r *InternalRouteReconciler) deleteService(ctx context.Context, svc *corev1.Service) error {
	uid := svc.UID
	err := r.client.CoreV1().Services(svc.Namespace).Delete(ctx, svc.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	r.logger.Info("internal route Service deleted", "namespace", svc.Namespace, "name", svc.Name,
		"route", svc.Labels[LabelRouteGUID])
	return nil
}

// ensureSlice creates want, or updates current, the listed EndpointSlice
// or nil, to match it. Ferry owns the endpoints and ports, so changes made
// by others are replaced. A slice of another address type is deleted and
// created again, because the address type is immutable.
func (r *InternalRouteReconciler) ensureSlice(ctx context.Context, current, want *discoveryv1.EndpointSlice) error {
	api := r.client.DiscoveryV1().EndpointSlices(want.Namespace)
	if current == nil {
		_, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			existing, getErr := api.Get(ctx, want.Name, metav1.GetOptions{})
			if getErr != nil {
				return fmt.Errorf("read EndpointSlice %s/%s: %w", want.Namespace, want.Name, getErr)
			}
			if !ownedBy(existing.Labels, r.installation) || existing.Labels[LabelComponent] != ComponentRouting {
				return &NotOwnedError{Kind: "EndpointSlice", Namespace: want.Namespace, Name: want.Name}
			}
			current = existing
		} else if err != nil {
			return fmt.Errorf("create EndpointSlice %s/%s: %w", want.Namespace, want.Name, err)
		} else {
			r.logger.Info("internal route EndpointSlice created", "namespace", want.Namespace, "name", want.Name,
				"route", want.Labels[LabelRouteGUID], "endpoints", len(want.Endpoints))
			return nil
		}
	}

	if current.AddressType != want.AddressType {
		if err := r.deleteSlice(ctx, current); err != nil {
			return err
		}
		if _, err := api.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			return fmt.Errorf("create EndpointSlice %s/%s again: %w", want.Namespace, want.Name, err)
		}
		return nil
	}
	if metadataCurrent(current.ObjectMeta, want.ObjectMeta) && len(current.Ports) == 0 &&
		equality.Semantic.DeepEqual(current.Endpoints, want.Endpoints) {
		return nil
	}
	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Endpoints = want.Endpoints
	updated.Ports = want.Ports
	if _, err := api.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update EndpointSlice %s/%s: %w", want.Namespace, want.Name, err)
	}
	// Readiness changes of the instances update slices often, so this is
	// logged at debug level.
	r.logger.Debug("internal route EndpointSlice updated", "namespace", want.Namespace, "name", want.Name,
		"route", want.Labels[LabelRouteGUID], "endpoints", len(want.Endpoints))
	return nil
}

// deleteSlice deletes a stale EndpointSlice, and not one that replaced it
// since it was listed.
func (r *InternalRouteReconciler) deleteSlice(ctx context.Context, slice *discoveryv1.EndpointSlice) error {
	uid := slice.UID
	err := r.client.DiscoveryV1().EndpointSlices(slice.Namespace).Delete(ctx, slice.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete EndpointSlice %s/%s: %w", slice.Namespace, slice.Name, err)
	}
	r.logger.Info("internal route EndpointSlice deleted", "namespace", slice.Namespace, "name", slice.Name,
		"route", slice.Labels[LabelRouteGUID])
	return nil
}

// deleteStaleSlices deletes the EndpointSlices in the internal route
// namespace that match selector and are not named in want.
func (r *InternalRouteReconciler) deleteStaleSlices(ctx context.Context, selector string, want map[string]bool) error {
	namespace := r.cfg.namespace()
	list, err := r.client.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return fmt.Errorf("list internal route EndpointSlices in %s: %w", namespace, err)
	}
	var errs []error
	for i := range list.Items {
		if !want[list.Items[i].Name] {
			errs = append(errs, r.deleteSlice(ctx, &list.Items[i]))
		}
	}
	return errors.Join(errs...)
}
