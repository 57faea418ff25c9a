package k8sbackend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/ferrycf/ferry/store"
)

// DeploymentSpec is an app's active deployment, as the reconciler needs
// it.
type DeploymentSpec struct {
	GUID string
	// State is store.DeploymentStateDeploying, DeploymentStatePaused or
	// DeploymentStateCanceling.
	State string
	// Strategy is store.DeploymentStrategyRolling or
	// DeploymentStrategyCanary.
	Strategy    string
	MaxInFlight int
	// CanarySteps are instance weights in percent; 0 means one instance.
	CanarySteps []int
	// CanaryStep is the 1-based step the deployment is at or moving to.
	CanaryStep int
	// TargetRevision is the AppRevision the instances move to. It differs
	// from the app's revision once a start or restart without a
	// deployment superseded the deployment.
	TargetRevision string
}

// DeploymentRecorder stores the transitions the reconciler makes, normally
// in PostgreSQL. Both methods wrap store.ErrDeploymentState when the
// deployment changed since it was read; the reconciler then waits for the
// next reconcile.
type DeploymentRecorder interface {
	// AdvanceDeployment moves an active deployment from state from to
	// state to, a store deployment state or store.DeploymentReasonSuperseded.
	AdvanceDeployment(ctx context.Context, guid, from, to string) error
	// FailDeployment cancels a deployment whose new instances cannot run,
	// with reason as its status error.
	FailDeployment(ctx context.Context, guid, reason string) error
}

// deploymentCrashLimit is how many crashes of one new instance make a
// deployment give up. By the third crash the kubelet has restarted the
// instance twice, so one bad start does not end a deployment.
const deploymentCrashLimit = 3

// imageFailureReasons are the container waiting reasons that mean a new
// instance cannot start at all, so the deployment fails at once.
var imageFailureReasons = []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"}

// rolloutProgress is the state of one process's move to the target
// revision after a reconcile.
type rolloutProgress struct {
	// done is true when every desired instance runs the target revision
	// and the other revision's StatefulSet is gone.
	done bool
	// stepReached is true when the current canary step's instances are
	// ready.
	stepReached bool
	// failure is the reason the target revision's instances cannot run,
	// or "".
	failure string
}

// otherSlot returns the slot that is not slot.
func otherSlot(slot string) string {
	if slot == SlotSecondary {
		return SlotPrimary
	}
	return SlotSecondary
}

// slotStatefulSets returns the cached StatefulSets of a process by slot;
// a missing slot has none.
func (r *AppReconciler) slotStatefulSets(namespace, processGUID string) map[string]*appsv1.StatefulSet {
	sets := map[string]*appsv1.StatefulSet{}
	for _, slot := range []string{SlotPrimary, SlotSecondary} {
		sts, err := r.statefulSets.StatefulSets(namespace).Get(SlotWorkloadName(processGUID, slot))
		if err == nil {
			sets[slot] = sts
		}
	}
	return sets
}

// statefulSetPods returns the cached pods of sts. Like the StatefulSet
// controller, it matches pods by name: the StatefulSet's name, a dash and
// an index.
func (r *AppReconciler) statefulSetPods(sts *appsv1.StatefulSet) []*corev1.Pod {
	if sts == nil {
		return nil
	}
	// Listers read the cache and fail only on an invalid selector.
	pods, _ := r.pods.Pods(sts.Namespace).List(labels.Set{LabelProcessGUID: sts.Labels[LabelProcessGUID]}.AsSelector())
	var members []*corev1.Pod
	for _, pod := range pods {
		index, ok := strings.CutPrefix(pod.Name, sts.Name+"-")
		if _, err := strconv.Atoi(index); ok && err == nil {
			members = append(members, pod)
		}
	}
	return members
}

// readyPods counts the pods of revision that are ready and not being
// deleted.
func readyPods(pods []*corev1.Pod, revision string) int32 {
	var n int32
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil && pod.Labels[LabelRevision] == labelValue(revision) && podReady(pod) {
			n++
		}
	}
	return n
}

// rolloutFailure returns why new instances cannot run: an instance that
// crashed deploymentCrashLimit times or whose image cannot be pulled. It
// returns "" while every new instance may still become ready.
func rolloutFailure(pods []*corev1.Pod) string {
	for _, pod := range pods {
		index, _ := instanceIndex(pod, pod.Labels[LabelProcessGUID])
		if crashes := observedCrashes(pod); crashes >= deploymentCrashLimit {
			return fmt.Sprintf("new instance %d crashed %d times", index, crashes)
		}
		cs := appContainerStatus(pod)
		if cs != nil && cs.State.Waiting != nil {
			for _, reason := range imageFailureReasons {
				if cs.State.Waiting.Reason == reason {
					return fmt.Sprintf("new instance %d cannot start: %s", index, joinReason(reason, cs.State.Waiting.Message))
				}
			}
		}
	}
	return ""
}

// canaryLimit returns how many new instances of desired the deployment's
// current canary step allows, and whether the deployment is in a canary
// step at all.
func canaryLimit(d *DeploymentSpec, desired int32) (int32, bool) {
	if d.Strategy != store.DeploymentStrategyCanary || d.State == store.DeploymentStateCanceling ||
		d.CanaryStep < 1 || d.CanaryStep > len(d.CanarySteps) || desired == 0 {
		return desired, false
	}
	weight := d.CanarySteps[d.CanaryStep-1]
	limit := int32(1)
	if weight > 0 {
		// Round up, so every step with a weight has an instance.
		limit = (desired*int32(weight) + 99) / 100
	}
	return min(max(limit, 1), desired), true
}

// ensureProcessWorkload keeps the process's one StatefulSet in line with
// the app when no deployment is active. A process left with a StatefulSet
// in each slot, because a deployment was superseded, keeps the one that
// runs the app's revision, or else the one with more ready instances.
func (r *AppReconciler) ensureProcessWorkload(ctx context.Context, app AppSpec, proc ProcessSpec) error {
	sets := r.slotStatefulSets(SpaceNamespace(app.SpaceGUID), proc.GUID)
	slot := SlotPrimary
	switch {
	case sets[SlotPrimary] != nil && sets[SlotSecondary] != nil:
		slot = r.survivingSlot(app, sets)
		loser := sets[otherSlot(slot)]
		if err := r.deleteObject(ctx, "StatefulSet", loser, r.client.AppsV1().StatefulSets(loser.Namespace).Delete); err != nil {
			return err
		}
		r.logger.Info("second StatefulSet of process removed", "app_guid", app.GUID, "process_guid", proc.GUID,
			"statefulset", loser.Name)
	case sets[SlotSecondary] != nil:
		slot = SlotSecondary
	}
	return r.ensureStatefulSet(ctx, MakeSlotStatefulSet(app, proc, r.workload, slot))
}

// survivingSlot picks which of a process's two StatefulSets stays.
func (r *AppReconciler) survivingSlot(app AppSpec, sets map[string]*appsv1.StatefulSet) string {
	for _, slot := range []string{SlotPrimary, SlotSecondary} {
		if sets[slot].Spec.Template.Labels[LabelRevision] == labelValue(app.Revision) {
			return slot
		}
	}
	primary := readyPods(r.statefulSetPods(sets[SlotPrimary]), sets[SlotPrimary].Spec.Template.Labels[LabelRevision])
	secondary := readyPods(r.statefulSetPods(sets[SlotSecondary]), sets[SlotSecondary].Spec.Template.Labels[LabelRevision])
	if secondary > primary {
		return SlotSecondary
	}
	return SlotPrimary
}

// rollProcess takes one step of a deployment for one process: surge
// before kill. The target revision's StatefulSet grows to its ready
// instances plus max_in_flight, up to the desired count or the canary
// step's share. The other revision's StatefulSet shrinks to the desired
// count minus the ready new instances, and is deleted once the new ones
// are all ready and its pods are gone. Each StatefulSet keeps its
// instance indexes. A canceling deployment moves back the same way, with
// the previous revision as the target.
func (r *AppReconciler) rollProcess(ctx context.Context, app AppSpec, proc ProcessSpec, d *DeploymentSpec) (rolloutProgress, error) {
	namespace := SpaceNamespace(app.SpaceGUID)
	sets := r.slotStatefulSets(namespace, proc.GUID)
	target, err := r.targetSlot(ctx, app, sets)
	if err != nil {
		return rolloutProgress{}, err
	}
	old := sets[otherSlot(target)]

	desired := max(proc.Instances, 0)
	probe := MakeSlotStatefulSet(app, proc, r.workload, target)
	if msg := probe.Annotations[AnnotationStartError]; msg != "" {
		return rolloutProgress{failure: "new instances cannot start: " + msg}, nil
	}
	pods := r.statefulSetPods(sets[target])
	ready := readyPods(pods, app.Revision)
	var progress rolloutProgress
	if d.State != store.DeploymentStateCanceling {
		progress.failure = rolloutFailure(pods)
	}

	limit, inCanaryStep := canaryLimit(d, desired)
	current := int32(0)
	if sts := sets[target]; sts != nil && sts.Spec.Template.Labels[LabelRevision] == labelValue(app.Revision) {
		current = ptr.Deref(sts.Spec.Replicas, 0)
	}
	surge := ready + int32(max(d.MaxInFlight, 1))
	step := proc
	step.Instances = min(limit, max(current, surge))
	if err := r.ensureStatefulSet(ctx, MakeSlotStatefulSet(app, step, r.workload, target)); err != nil {
		return rolloutProgress{}, err
	}
	progress.stepReached = ready >= limit

	if old != nil {
		keep := max(desired-ready, 0)
		if inCanaryStep {
			// A canary step keeps an old instance, so the new ones can be
			// compared with it and a cancel needs no new start.
			keep = max(keep, 1)
		}
		keep = min(keep, ptr.Deref(old.Spec.Replicas, 0))
		if err := r.scaleStatefulSet(ctx, old, keep); err != nil {
			return rolloutProgress{}, err
		}
		if keep == 0 && ready >= desired && len(r.statefulSetPods(old)) == 0 {
			if err := r.deleteObject(ctx, "StatefulSet", old, r.client.AppsV1().StatefulSets(namespace).Delete); err != nil {
				return rolloutProgress{}, err
			}
			r.logger.Info("previous revision of process removed", "app_guid", app.GUID, "process_guid", proc.GUID,
				"deployment_guid", d.GUID, "statefulset", old.Name)
			old = nil
		}
	}
	progress.done = ready >= desired && old == nil && !inCanaryStep
	return progress, nil
}

// targetSlot returns the slot whose StatefulSet runs the app's revision.
// Without one, the target is a free slot. When both slots hold other
// revisions, because a deployment superseded one in progress, the one
// with fewer ready instances is deleted, and removed from sets, to make
// room.
func (r *AppReconciler) targetSlot(ctx context.Context, app AppSpec, sets map[string]*appsv1.StatefulSet) (string, error) {
	for _, slot := range []string{SlotPrimary, SlotSecondary} {
		if sts := sets[slot]; sts != nil && sts.Spec.Template.Labels[LabelRevision] == labelValue(app.Revision) {
			return slot, nil
		}
	}
	switch {
	case sets[SlotPrimary] == nil:
		return SlotPrimary, nil
	case sets[SlotSecondary] == nil:
		return SlotSecondary, nil
	}
	free := otherSlot(r.survivingSlot(app, sets))
	loser := sets[free]
	if err := r.deleteObject(ctx, "StatefulSet", loser, r.client.AppsV1().StatefulSets(loser.Namespace).Delete); err != nil {
		return "", err
	}
	delete(sets, free)
	r.logger.Info("StatefulSet of a superseded revision removed", "app_guid", app.GUID, "statefulset", loser.Name)
	return free, nil
}

// scaleStatefulSet sets the replicas of sts and nothing else, so the
// pods of a previous revision keep their template while they are
// removed.
func (r *AppReconciler) scaleStatefulSet(ctx context.Context, sts *appsv1.StatefulSet, replicas int32) error {
	if ptr.Deref(sts.Spec.Replicas, 0) == replicas {
		return nil
	}
	updated := sts.DeepCopy()
	updated.Spec.Replicas = ptr.To(replicas)
	_, err := r.client.AppsV1().StatefulSets(sts.Namespace).Update(ctx, updated, metav1.UpdateOptions{FieldManager: FieldManager})
	if err != nil {
		return fmt.Errorf("scale StatefulSet %s/%s to %d: %w", sts.Namespace, sts.Name, replicas, err)
	}
	r.logger.Info("previous revision of process scaled", "app_guid", sts.Labels[LabelAppGUID],
		"process_guid", sts.Labels[LabelProcessGUID], "statefulset", sts.Name, "replicas", replicas)
	return nil
}

// activeDeployment returns the app's deployment while it still applies.
// A deployment of an app that was stopped, or started or restarted
// without a deployment, is recorded as superseded, and nil is returned.
func (r *AppReconciler) activeDeployment(ctx context.Context, app AppSpec) (*DeploymentSpec, error) {
	d := app.Deployment
	if d == nil || r.deployments == nil {
		return nil, nil
	}
	if app.Started && d.TargetRevision == app.Revision {
		return d, nil
	}
	err := r.deployments.AdvanceDeployment(ctx, d.GUID, d.State, store.DeploymentReasonSuperseded)
	switch {
	case errors.Is(err, store.ErrDeploymentState):
		// The app or the deployment changed since they were read; the
		// change's notification brings the next reconcile.
		return nil, fmt.Errorf("deployment %s changed while being reconciled: %w", d.GUID, err)
	case err != nil:
		return nil, err
	}
	r.logger.Info("deployment superseded", "app_guid", app.GUID, "deployment_guid", d.GUID)
	return nil, nil
}

// recordRollout writes the deployment's transition once every process
// reached it: PAUSED at a canary step, DEPLOYED or CANCELED when all
// instances run the target revision. A failure cancels the deployment.
func (r *AppReconciler) recordRollout(ctx context.Context, app AppSpec, d *DeploymentSpec, progress []rolloutProgress) error {
	done, stepReached := true, true
	var failures []string
	for _, p := range progress {
		done = done && p.done
		stepReached = stepReached && p.stepReached
		if p.failure != "" {
			failures = append(failures, p.failure)
		}
	}

	var err error
	switch {
	case len(failures) > 0 && d.State != store.DeploymentStateCanceling:
		reason := strings.Join(failures, "; ")
		err = r.deployments.FailDeployment(ctx, d.GUID, reason)
		if err == nil {
			r.logger.Warn("deployment canceled: its new instances cannot run", "app_guid", app.GUID,
				"deployment_guid", d.GUID, "reason", reason)
		}
	case done && d.State == store.DeploymentStateDeploying:
		err = r.advance(ctx, app, d, store.DeploymentStateDeployed)
	case done && d.State == store.DeploymentStateCanceling:
		err = r.advance(ctx, app, d, store.DeploymentStateCanceled)
	case stepReached && d.State == store.DeploymentStateDeploying && d.Strategy == store.DeploymentStrategyCanary &&
		d.CanaryStep <= len(d.CanarySteps):
		err = r.advance(ctx, app, d, store.DeploymentStatePaused)
	}
	if errors.Is(err, store.ErrDeploymentState) {
		// A user canceled or continued the deployment since it was read;
		// that change's notification brings the next reconcile.
		return nil
	}
	return err
}

func (r *AppReconciler) advance(ctx context.Context, app AppSpec, d *DeploymentSpec, to string) error {
	if err := r.deployments.AdvanceDeployment(ctx, d.GUID, d.State, to); err != nil {
		return err
	}
	r.logger.Info("deployment advanced", "app_guid", app.GUID, "deployment_guid", d.GUID, "from", d.State, "to", to)
	return nil
}
