package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// insertAuditEvent inserts an event with a chosen created_at, as a
// transaction that started at that time and committed now would.
func insertAuditEvent(t *testing.T, st *store.Store, guid, targetType string, created time.Time) {
	t.Helper()
	_, err := st.DB().ExecContext(context.Background(), `
		INSERT INTO audit_events (guid, type, actor_guid, actor_type, actor_name, target_guid, target_type,
			target_name, data, created_at, updated_at)
		VALUES ($1, 'audit.app.update', 'user-1', 'user', 'alice', 'app-1', $2, 'web', '{"request":{"name":"web"}}', $3, $3)`,
		guid, targetType, created)
	if err != nil {
		t.Fatal(err)
	}
}

func nextGUIDs(t *testing.T, tail *store.AuditTail, limit int) []string {
	t.Helper()
	events, err := tail.Next(context.Background(), limit)
	if err != nil {
		t.Fatal(err)
	}
	guids := []string{}
	for _, ev := range events {
		guids = append(guids, ev.GUID)
	}
	return guids
}

func TestAuditTailReturnsNewEventsOnce(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	now, err := st.DatabaseTime(ctx)
	if err != nil {
		t.Fatal(err)
	}
	insertAuditEvent(t, st, "before", "app", now.Add(-time.Minute))
	insertAuditEvent(t, st, "b", "app", now.Add(2*time.Second))
	insertAuditEvent(t, st, "a", "app", now.Add(time.Second))
	insertAuditEvent(t, st, "space-event", "space", now.Add(time.Second))

	tail := st.TailAuditEvents("app", now)
	if diff := cmp.Diff([]string{"a", "b"}, nextGUIDs(t, tail, 0)); diff != "" {
		t.Errorf("first read (-want +got):\n%s", diff)
	}
	if got := nextGUIDs(t, tail, 0); len(got) != 0 {
		t.Errorf("second read = %v, want no events", got)
	}

	insertAuditEvent(t, st, "c", "app", now.Add(3*time.Second))
	if diff := cmp.Diff([]string{"c"}, nextGUIDs(t, tail, 0)); diff != "" {
		t.Errorf("read after a new event (-want +got):\n%s", diff)
	}
}

func TestAuditTailReturnsLateCommits(t *testing.T) {
	st := pgtest.NewStore(t)
	now, err := st.DatabaseTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	insertAuditEvent(t, st, "newest", "app", now.Add(time.Minute))
	tail := st.TailAuditEvents("", now)
	if diff := cmp.Diff([]string{"newest"}, nextGUIDs(t, tail, 0)); diff != "" {
		t.Fatalf("first read (-want +got):\n%s", diff)
	}

	// Both transactions started before the newest event, and only the one
	// within the overlap is still found.
	insertAuditEvent(t, st, "late", "app", now.Add(time.Minute-time.Second))
	insertAuditEvent(t, st, "too-late", "app", now.Add(time.Minute-store.AuditTailOverlap-time.Second))
	if diff := cmp.Diff([]string{"late"}, nextGUIDs(t, tail, 0)); diff != "" {
		t.Errorf("read after late commits (-want +got):\n%s", diff)
	}
}

func TestAuditTailPagesAndLimits(t *testing.T) {
	st := pgtest.NewStore(t)
	now, err := st.DatabaseTime(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// More events than one page, many sharing a created_at, so paging
	// must order by guid too.
	var want []string
	for i := range 1200 {
		guid := fmt.Sprintf("%04d-%s", i, uuid.NewString()[:8])
		insertAuditEvent(t, st, guid, "app", now.Add(time.Duration(i/100)*time.Millisecond))
		want = append(want, guid)
	}

	tail := st.TailAuditEvents("app", now)
	first := nextGUIDs(t, tail, 700)
	rest := nextGUIDs(t, tail, 0)
	if diff := cmp.Diff(want[:700], first); diff != "" {
		t.Errorf("read with limit 700 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[700:], rest); diff != "" {
		t.Errorf("read of the rest (-want +got):\n%s", diff)
	}
}
