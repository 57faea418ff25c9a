package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
)

// kubeEventSeed creates apps that events can belong to.
func kubeEventSeed(t *testing.T) (stagingSeed, *store.Store, string) {
	t.Helper()
	seed, st := newStagingSeed(t)
	space := seed.space(seed.org("acme", nil), "dev", nil)
	return seed, st, space
}

func newKubeEvent(appGUID string, lastSeen time.Time) store.KubeEvent {
	index := 1
	return store.KubeEvent{
		UID: uuid.NewString(), AppGUID: appGUID, ProcessGUID: "proc-1", InstanceIndex: &index,
		Type: "Warning", Reason: "BackOff", Message: "Back-off restarting failed container app", Count: 1,
		FirstSeen: lastSeen, LastSeen: lastSeen, Namespace: "cf-space-1", InvolvedKind: "Pod",
		InvolvedName: "proc-proc-1-1", InvolvedUID: "pod-uid",
	}
}

func recordKubeEvents(t *testing.T, st *store.Store, events ...store.KubeEvent) {
	t.Helper()
	for _, ev := range events {
		if err := st.RecordKubeEvent(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
}

func kubeEventUIDs(t *testing.T, st *store.Store, f store.KubeEventFilter) []string {
	t.Helper()
	events, err := st.KubeEvents(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	uids := []string{}
	for _, ev := range events {
		uids = append(uids, ev.UID)
	}
	return uids
}

func TestKubeEventsRoundTrip(t *testing.T) {
	seed, st, space := kubeEventSeed(t)
	app := seed.app(space, "web")
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

	instance := newKubeEvent(app, at)
	staging := store.KubeEvent{UID: uuid.NewString(), AppGUID: app, BuildGUID: "build-1", Type: "Warning",
		Reason: "Failed", Message: "Failed to pull image", Count: 2, FirstSeen: at.Add(-time.Minute),
		LastSeen: at.Add(time.Minute), Namespace: "cf-space-1", InvolvedKind: "Pod", InvolvedName: "build-1-abcde"}
	recordKubeEvents(t, st, instance, staging)

	got, err := st.KubeEvents(context.Background(), store.KubeEventFilter{AppGUID: app})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].FirstSeen, got[i].LastSeen = got[i].FirstSeen.UTC(), got[i].LastSeen.UTC()
	}
	if diff := cmp.Diff([]store.KubeEvent{staging, instance}, got); diff != "" {
		t.Errorf("events, newest first (-want +got):\n%s", diff)
	}
}

func TestKubeEventsUpdateOnlyForward(t *testing.T) {
	seed, st, space := kubeEventSeed(t)
	app := seed.app(space, "web")
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ev := newKubeEvent(app, at)
	recordKubeEvents(t, st, ev)

	repeated := ev
	repeated.Count, repeated.LastSeen, repeated.Message = 3, at.Add(time.Minute), "Back-off 20s restarting"
	stale := ev
	stale.Message = "an older copy"
	recordKubeEvents(t, st, repeated, stale)

	got, err := st.KubeEvents(context.Background(), store.KubeEventFilter{AppGUID: app})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d events, want 1 row per event UID", len(got))
	}
	if got[0].Count != 3 || got[0].Message != repeated.Message || !got[0].LastSeen.Equal(repeated.LastSeen) {
		t.Errorf("event = count %d, %q, last seen %s, want the repeated copy", got[0].Count, got[0].Message, got[0].LastSeen)
	}
	if !got[0].FirstSeen.Equal(at) {
		t.Errorf("first seen = %s, want %s", got[0].FirstSeen, at)
	}
}

func TestKubeEventsOfDeletedApp(t *testing.T) {
	seed, st, space := kubeEventSeed(t)
	app := seed.app(space, "web")
	ctx := context.Background()
	recordKubeEvents(t, st, newKubeEvent(app, time.Now()))

	if _, err := st.DB().ExecContext(ctx, `DELETE FROM apps WHERE guid = $1`, app); err != nil {
		t.Fatal(err)
	}
	if uids := kubeEventUIDs(t, st, store.KubeEventFilter{AppGUID: app}); len(uids) != 0 {
		t.Errorf("events of a deleted app: %v, want none", uids)
	}
	if err := st.RecordKubeEvent(ctx, newKubeEvent(app, time.Now())); err != nil {
		t.Errorf("record an event of a deleted app: %v, want nil", err)
	}
	if uids := kubeEventUIDs(t, st, store.KubeEventFilter{AppGUID: app}); len(uids) != 0 {
		t.Errorf("events recorded for a deleted app: %v", uids)
	}
}

func TestKubeEventsFilter(t *testing.T) {
	seed, st, space := kubeEventSeed(t)
	app := seed.app(space, "web")
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var uids []string
	for i := range 4 {
		ev := newKubeEvent(app, at.Add(time.Duration(i)*time.Second))
		if i%2 == 1 {
			ev.ProcessGUID = "proc-2"
		}
		recordKubeEvents(t, st, ev)
		uids = append(uids, ev.UID)
	}

	for _, tc := range []struct {
		name   string
		filter store.KubeEventFilter
		want   []string
	}{
		{"app", store.KubeEventFilter{AppGUID: app}, []string{uids[3], uids[2], uids[1], uids[0]}},
		{"process", store.KubeEventFilter{AppGUID: app, ProcessGUID: "proc-2"}, []string{uids[3], uids[1]}},
		{"limit", store.KubeEventFilter{AppGUID: app, Limit: 2}, []string{uids[3], uids[2]}},
		{"other app", store.KubeEventFilter{AppGUID: "other"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, kubeEventUIDs(t, st, tc.filter)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPruneKubeEvents(t *testing.T) {
	seed, st, space := kubeEventSeed(t)
	busy, quiet := seed.app(space, "busy"), seed.app(space, "quiet")
	now := time.Now().UTC().Truncate(time.Second)
	var busyUIDs []string
	for i := range 5 {
		ev := newKubeEvent(busy, now.Add(-time.Duration(i)*time.Minute))
		recordKubeEvents(t, st, ev)
		busyUIDs = append(busyUIDs, ev.UID)
	}
	old := newKubeEvent(quiet, now.Add(-48*time.Hour))
	recent := newKubeEvent(quiet, now.Add(-time.Hour))
	recordKubeEvents(t, st, old, recent)

	deleted, err := st.PruneKubeEvents(context.Background(), now.Add(-24*time.Hour), 3)
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 3 {
		t.Errorf("deleted %d events, want 3: one too old, two beyond the newest 3 of an app", deleted)
	}
	if diff := cmp.Diff(busyUIDs[:3], kubeEventUIDs(t, st, store.KubeEventFilter{AppGUID: busy})); diff != "" {
		t.Errorf("events of the busy app (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{recent.UID}, kubeEventUIDs(t, st, store.KubeEventFilter{AppGUID: quiet})); diff != "" {
		t.Errorf("events of the quiet app (-want +got):\n%s", diff)
	}

	deleted, err = st.PruneKubeEvents(context.Background(), now.Add(-24*time.Hour), 0)
	if err != nil || deleted != 0 {
		t.Errorf("prune again without a count limit: %d deleted, %v; want 0, nil", deleted, err)
	}
}

func TestKubeEventsManyApps(t *testing.T) {
	seed, st, space := kubeEventSeed(t)
	now := time.Now().UTC()
	apps := make([]string, 3)
	for i := range apps {
		apps[i] = seed.app(space, fmt.Sprintf("app-%d", i))
		for j := range 3 {
			recordKubeEvents(t, st, newKubeEvent(apps[i], now.Add(-time.Duration(j)*time.Second)))
		}
	}
	if _, err := st.PruneKubeEvents(context.Background(), now.Add(-time.Hour), 2); err != nil {
		t.Fatal(err)
	}
	for _, app := range apps {
		if n := len(kubeEventUIDs(t, st, store.KubeEventFilter{AppGUID: app})); n != 2 {
			t.Errorf("app %s keeps %d events, want 2", app, n)
		}
	}
}
