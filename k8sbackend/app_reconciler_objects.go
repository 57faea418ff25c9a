package k8sbackend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// removableAnnotations are annotations Ferry sets only sometimes, so an
// update removes them when the desired object lacks them.
var removableAnnotations = []string{AnnotationStartError, AnnotationSkippedEnv}

// ensureNamespace creates the app's space namespace when it is missing.
func (r *AppReconciler) ensureNamespace(ctx context.Context, app AppSpec) error {
	space := store.Space{GUID: app.SpaceGUID, Name: app.SpaceName, OrganizationGUID: app.OrgGUID}
	want := MakeSpaceNamespace(space, app.OrgName, r.cfg.Installation)
	ns, err := r.namespaces.Get(want.Name)
	if err == nil {
		if ns.DeletionTimestamp != nil {
			return fmt.Errorf("namespace %s is being deleted", ns.Name)
		}
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return err
	}

	_, err = r.client.CoreV1().Namespaces().Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		existing, getErr := r.client.CoreV1().Namespaces().Get(ctx, want.Name, metav1.GetOptions{})
		if getErr != nil {
			return fmt.Errorf("read namespace %s: %w", want.Name, getErr)
		}
		if !ownedBy(existing.Labels, r.cfg.Installation) || existing.Labels[LabelSpaceGUID] != app.SpaceGUID {
			return &NotOwnedError{Kind: "Namespace", Name: want.Name}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("create namespace %s: %w", want.Name, err)
	}
	r.logger.Info("space namespace created", "namespace", want.Name, "space_guid", app.SpaceGUID)
	return nil
}

// ensureEnvSecret creates or updates the app's env Secret. Its data is
// compared in full, because every key in it becomes a variable of the app.
func (r *AppReconciler) ensureEnvSecret(ctx context.Context, app AppSpec) error {
	want, skipped := MakeEnvSecret(app)
	secrets := r.client.CoreV1().Secrets(want.Namespace)
	current, err := r.secrets.Secrets(want.Namespace).Get(want.Name)
	if apierrors.IsNotFound(err) {
		return r.createEnvSecret(ctx, app, want, skipped)
	}
	if err != nil {
		return err
	}
	if current.Type != want.Type || ptr.Deref(current.Immutable, false) {
		if err := r.deleteObject(ctx, "Secret", current, secrets.Delete); err != nil {
			return err
		}
		return r.createEnvSecret(ctx, app, want, skipped)
	}
	if maps.EqualFunc(current.Data, want.Data, bytes.Equal) && metadataCurrent(current.ObjectMeta, want.ObjectMeta) {
		return nil
	}

	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Data = want.Data
	updated.StringData = nil
	if _, err := secrets.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logSkippedEnv(app, skipped)
	return nil
}

func (r *AppReconciler) createEnvSecret(ctx context.Context, app AppSpec, want *corev1.Secret, skipped []string) error {
	secrets := r.client.CoreV1().Secrets(want.Namespace)
	_, err := secrets.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return r.checkExisting(ctx, "Secret", want.Namespace, want.Name, func(ctx context.Context) (metav1.Object, error) {
			return secrets.Get(ctx, want.Name, metav1.GetOptions{})
		})
	}
	if err != nil {
		return fmt.Errorf("create Secret %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logSkippedEnv(app, skipped)
	return nil
}

// logSkippedEnv names, never with values, the variables the env Secret
// cannot hold.
func (r *AppReconciler) logSkippedEnv(app AppSpec, skipped []string) {
	if len(skipped) > 0 {
		r.logger.Warn("environment variables left out: their names are not valid Secret keys",
			"app_guid", app.GUID, "names", skipped)
	}
}

// ensureStatefulSet creates, updates or replaces a process's StatefulSet
// so that it matches want.
func (r *AppReconciler) ensureStatefulSet(ctx context.Context, want *appsv1.StatefulSet) error {
	sets := r.client.AppsV1().StatefulSets(want.Namespace)
	current, err := r.statefulSets.StatefulSets(want.Namespace).Get(want.Name)
	if apierrors.IsNotFound(err) {
		return r.createStatefulSet(ctx, want)
	}
	if err != nil {
		return err
	}
	if current.Annotations[AnnotationSpecHash] == want.Annotations[AnnotationSpecHash] &&
		metadataCurrent(current.ObjectMeta, want.ObjectMeta) && covers(want.Spec, current.Spec) {
		return nil
	}
	if !sameImmutableStatefulSetFields(current, want) {
		if err := r.deleteObject(ctx, "StatefulSet", current, sets.Delete); err != nil {
			return err
		}
		return r.createStatefulSet(ctx, want)
	}
	if err := r.ensureRegistrySecret(ctx, want.Namespace); err != nil {
		return err
	}

	// Selector, serviceName, podManagementPolicy and volume claim
	// templates are immutable and already match; the rest of the spec is
	// Ferry's.
	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Spec.Replicas = want.Spec.Replicas
	updated.Spec.Template = want.Spec.Template
	updated.Spec.UpdateStrategy = want.Spec.UpdateStrategy
	updated.Spec.RevisionHistoryLimit = want.Spec.RevisionHistoryLimit
	updated.Spec.MinReadySeconds = want.Spec.MinReadySeconds
	updated.Spec.Ordinals = want.Spec.Ordinals
	updated.Spec.PersistentVolumeClaimRetentionPolicy = want.Spec.PersistentVolumeClaimRetentionPolicy
	if _, err := sets.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update StatefulSet %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logger.Info("process updated", "app_guid", want.Labels[LabelAppGUID], "process_guid", want.Labels[LabelProcessGUID],
		"statefulset", want.Name, "namespace", want.Namespace, "replicas", *want.Spec.Replicas)
	return nil
}

func (r *AppReconciler) createStatefulSet(ctx context.Context, want *appsv1.StatefulSet) error {
	if err := r.ensureRegistrySecret(ctx, want.Namespace); err != nil {
		return err
	}
	sets := r.client.AppsV1().StatefulSets(want.Namespace)
	_, err := sets.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return r.checkExisting(ctx, "StatefulSet", want.Namespace, want.Name, func(ctx context.Context) (metav1.Object, error) {
			return sets.Get(ctx, want.Name, metav1.GetOptions{})
		})
	}
	if err != nil {
		return fmt.Errorf("create StatefulSet %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logger.Info("process created", "app_guid", want.Labels[LabelAppGUID], "process_guid", want.Labels[LabelProcessGUID],
		"statefulset", want.Name, "namespace", want.Namespace, "replicas", *want.Spec.Replicas)
	if msg := want.Annotations[AnnotationStartError]; msg != "" {
		r.logger.Info("process cannot start", "app_guid", want.Labels[LabelAppGUID],
			"process_guid", want.Labels[LabelProcessGUID], "reason", msg)
	}
	return nil
}

func sameImmutableStatefulSetFields(current, want *appsv1.StatefulSet) bool {
	return current.Spec.Selector != nil && len(current.Spec.Selector.MatchExpressions) == 0 &&
		maps.Equal(current.Spec.Selector.MatchLabels, want.Spec.Selector.MatchLabels) &&
		current.Spec.ServiceName == want.Spec.ServiceName &&
		current.Spec.PodManagementPolicy == want.Spec.PodManagementPolicy &&
		len(current.Spec.VolumeClaimTemplates) == len(want.Spec.VolumeClaimTemplates)
}

// ensureService creates, updates or replaces a web process's Service so
// that it matches want. The cluster IP and IP families stay as allocated.
func (r *AppReconciler) ensureService(ctx context.Context, want *corev1.Service) error {
	services := r.client.CoreV1().Services(want.Namespace)
	current, err := r.services.Services(want.Namespace).Get(want.Name)
	if apierrors.IsNotFound(err) {
		return r.createService(ctx, want)
	}
	if err != nil {
		return err
	}
	if current.Annotations[AnnotationSpecHash] == want.Annotations[AnnotationSpecHash] &&
		metadataCurrent(current.ObjectMeta, want.ObjectMeta) && covers(want.Spec, current.Spec) {
		return nil
	}
	// Changing a Service's type or making it headless involves fields
	// Ferry does not own, so such a Service is replaced.
	if current.Spec.Type != want.Spec.Type || current.Spec.ClusterIP == corev1.ClusterIPNone {
		if err := r.deleteObject(ctx, "Service", current, services.Delete); err != nil {
			return err
		}
		return r.createService(ctx, want)
	}

	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Spec.Selector = want.Spec.Selector
	updated.Spec.Ports = want.Spec.Ports
	if _, err := services.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update Service %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logger.Info("process Service updated", "process_guid", want.Labels[LabelProcessGUID], "service", want.Name,
		"namespace", want.Namespace)
	return nil
}

func (r *AppReconciler) createService(ctx context.Context, want *corev1.Service) error {
	services := r.client.CoreV1().Services(want.Namespace)
	_, err := services.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		return r.checkExisting(ctx, "Service", want.Namespace, want.Name, func(ctx context.Context) (metav1.Object, error) {
			return services.Get(ctx, want.Name, metav1.GetOptions{})
		})
	}
	if err != nil {
		return fmt.Errorf("create Service %s/%s: %w", want.Namespace, want.Name, err)
	}
	r.logger.Info("process Service created", "process_guid", want.Labels[LabelProcessGUID], "service", want.Name,
		"namespace", want.Namespace)
	return nil
}

// checkExisting handles a create that failed because the name is taken
// by an object missing from the informer cache. Either the cache lags
// behind Ferry's own create, and the next event brings the object. Or the
// object lacks Ferry's labels, which the informers filter out.
func (r *AppReconciler) checkExisting(ctx context.Context, kind, namespace, name string,
	get func(context.Context) (metav1.Object, error)) error {
	existing, err := get(ctx)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s/%s was deleted while being created", kind, namespace, name)
	}
	if err != nil {
		return fmt.Errorf("read %s %s/%s: %w", kind, namespace, name, err)
	}
	if !ownedBy(existing.GetLabels(), r.cfg.Installation) || existing.GetLabels()[LabelComponent] != ComponentApp {
		return &NotOwnedError{Kind: kind, Namespace: namespace, Name: name}
	}
	return nil
}

// deleteObject deletes obj, and not an object that replaced it since the
// informer saw it.
func (r *AppReconciler) deleteObject(ctx context.Context, kind string, obj metav1.Object,
	del func(context.Context, string, metav1.DeleteOptions) error) error {
	uid := obj.GetUID()
	err := del(ctx, obj.GetName(), metav1.DeleteOptions{
		Preconditions:     &metav1.Preconditions{UID: &uid},
		PropagationPolicy: ptr.To(metav1.DeletePropagationBackground),
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete %s %s/%s: %w", kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// ensureRegistrySecret creates or updates the namespace's registry pull
// Secret when pods need one.
func (r *AppReconciler) ensureRegistrySecret(ctx context.Context, namespace string) error {
	if r.workload.RegistrySecretName == "" || !r.cfg.HasRegistryCredentials() {
		return nil
	}
	want, err := MakeRegistrySecret(namespace, r.cfg)
	if err != nil {
		return err
	}
	secrets := r.client.CoreV1().Secrets(namespace)
	current, err := secrets.Get(ctx, want.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = secrets.Create(ctx, want, metav1.CreateOptions{FieldManager: FieldManager})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Secret %s/%s: %w", namespace, want.Name, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read Secret %s/%s: %w", namespace, want.Name, err)
	case !ownedBy(current.Labels, r.cfg.Installation):
		return &NotOwnedError{Kind: "Secret", Namespace: namespace, Name: want.Name}
	case current.Annotations[AnnotationSpecHash] == want.Annotations[AnnotationSpecHash]:
		return nil
	}
	updated := current.DeepCopy()
	mergeMetadata(&updated.ObjectMeta, want.ObjectMeta)
	updated.Data = want.Data
	if _, err := secrets.Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("update Secret %s/%s: %w", namespace, want.Name, err)
	}
	return nil
}

// removeApp deletes every object that runs app guid.
func (r *AppReconciler) removeApp(ctx context.Context, guid, why string) error {
	selector := labels.Set{LabelAppGUID: guid}.AsSelector()
	removed, err := r.removeMatching(ctx, selector, func(map[string]string) bool { return true })
	if removed > 0 {
		r.logger.Info("app objects removed", "app_guid", guid, "objects", removed, "reason", why)
	}
	return err
}

// removeStaleProcesses deletes the StatefulSets and Services of an app's
// processes that are not in keep.
func (r *AppReconciler) removeStaleProcesses(ctx context.Context, app AppSpec, keep map[string]bool) error {
	selector := labels.Set{LabelAppGUID: app.GUID}.AsSelector()
	removed, err := r.removeMatching(ctx, selector, func(l map[string]string) bool {
		guid, isProcess := l[LabelProcessGUID]
		return isProcess && !keep[guid]
	})
	if removed > 0 {
		r.logger.Info("objects of removed processes deleted", "app_guid", app.GUID, "objects", removed)
	}
	return err
}

// removeMatching deletes the cached StatefulSets, Services and Secrets
// that match selector and pass remove, and returns how many it deleted.
// For Secrets, only env Secrets qualify: pull Secrets have no app label.
func (r *AppReconciler) removeMatching(ctx context.Context, selector labels.Selector, remove func(map[string]string) bool) (int, error) {
	var errs []error
	removed := 0
	del := func(kind string, obj metav1.Object, fn func(context.Context, string, metav1.DeleteOptions) error) {
		if !remove(obj.GetLabels()) {
			return
		}
		if err := r.deleteObject(ctx, kind, obj, fn); err != nil {
			errs = append(errs, err)
			return
		}
		removed++
	}

	// Listers read the cache and fail only on an invalid selector.
	sets, _ := r.statefulSets.List(selector)
	for _, o := range sets {
		del("StatefulSet", o, r.client.AppsV1().StatefulSets(o.Namespace).Delete)
	}
	services, _ := r.services.List(selector)
	for _, o := range services {
		del("Service", o, r.client.CoreV1().Services(o.Namespace).Delete)
	}
	secrets, _ := r.secrets.List(selector)
	for _, o := range secrets {
		del("Secret", o, r.client.CoreV1().Secrets(o.Namespace).Delete)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("remove app objects: %w", errors.Join(errs...))
	}
	return removed, nil
}

// metadataCurrent reports whether current has every label and annotation
// of want, and none of the removable annotations want lacks.
func metadataCurrent(current, want metav1.ObjectMeta) bool {
	for k, v := range want.Labels {
		if current.Labels[k] != v {
			return false
		}
	}
	for k, v := range want.Annotations {
		if current.Annotations[k] != v {
			return false
		}
	}
	for _, k := range removableAnnotations {
		if _, wanted := want.Annotations[k]; !wanted {
			if _, present := current.Annotations[k]; present {
				return false
			}
		}
	}
	return true
}

// mergeMetadata sets want's labels and annotations on meta, removes the
// removable annotations want lacks, and keeps everything else.
func mergeMetadata(meta *metav1.ObjectMeta, want metav1.ObjectMeta) {
	if meta.Labels == nil {
		meta.Labels = map[string]string{}
	}
	maps.Copy(meta.Labels, want.Labels)
	if meta.Annotations == nil {
		meta.Annotations = map[string]string{}
	}
	maps.Copy(meta.Annotations, want.Annotations)
	for _, k := range removableAnnotations {
		if _, wanted := want.Annotations[k]; !wanted {
			delete(meta.Annotations, k)
		}
	}
}

// covers reports whether current has every value want sets, comparing
// their JSON forms. Empty strings, lists, maps and nulls in want count as
// unset, because the API server fills in defaults for them; numbers and
// booleans always count. Lists must have the same length. This is what a
// server-side apply of want would enforce, so fields another client set
// and want leaves out do not count as drift.
func covers(want, current any) bool {
	w, err := jsonValue(want)
	if err != nil {
		return false
	}
	c, err := jsonValue(current)
	if err != nil {
		return false
	}
	return subset(w, c)
}

func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	return out, json.Unmarshal(b, &out)
}

func subset(want, current any) bool {
	switch w := want.(type) {
	case nil:
		return true
	case string:
		return w == "" || w == current
	case map[string]any:
		if len(w) == 0 {
			return true
		}
		c, ok := current.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, c[k]) {
				return false
			}
		}
		return true
	case []any:
		if len(w) == 0 {
			return true
		}
		c, ok := current.([]any)
		if !ok || len(c) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], c[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, current)
}
