package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// KubeEvent is a Kubernetes event about an object that runs or stages an
// app, as the controller copied it from the cluster.
type KubeEvent struct {
	// UID is the Event object's UID. Recording an event with a known UID
	// updates its row.
	UID     string
	AppGUID string
	// ProcessGUID is "" for events that concern no process, such as
	// staging events. InstanceIndex is nil unless the event concerns one
	// instance.
	ProcessGUID   string
	InstanceIndex *int
	// BuildGUID is "" outside staging.
	BuildGUID string
	// Type is "Warning" or "Normal".
	Type    string
	Reason  string
	Message string
	// Count is how often the event occurred between FirstSeen and
	// LastSeen.
	Count     int
	FirstSeen time.Time
	LastSeen  time.Time
	// Namespace, InvolvedKind, InvolvedName and InvolvedUID name the
	// object the event is about, such as a pod.
	Namespace    string
	InvolvedKind string
	InvolvedName string
	InvolvedUID  string
}

// KubeEventFilter selects the events of one app, newest first.
type KubeEventFilter struct {
	AppGUID string
	// ProcessGUID keeps only the events of that process when not "".
	ProcessGUID string
	// Limit is the maximum number of events returned. 0 means 100.
	Limit int
}

const kubeEventColumns = `uid, app_guid, COALESCE(process_guid, ''), instance_index, COALESCE(build_guid, ''),
	type, reason, message, count, first_seen, last_seen, namespace, involved_object_kind, involved_object_name,
	involved_object_uid`

func scanKubeEvent(row interface{ Scan(...any) error }) (KubeEvent, error) {
	var ev KubeEvent
	var index sql.NullInt64
	err := row.Scan(&ev.UID, &ev.AppGUID, &ev.ProcessGUID, &index, &ev.BuildGUID, &ev.Type, &ev.Reason, &ev.Message,
		&ev.Count, &ev.FirstSeen, &ev.LastSeen, &ev.Namespace, &ev.InvolvedKind, &ev.InvolvedName, &ev.InvolvedUID)
	if err != nil {
		return KubeEvent{}, mapError(err)
	}
	if index.Valid {
		i := int(index.Int64)
		ev.InstanceIndex = &i
	}
	return ev, nil
}

// RecordKubeEvent inserts ev, or updates the row of the same UID when ev
// has a higher count or a later LastSeen, so replaying an older copy of an
// event changes nothing. It records nothing, and returns nil, when the app
// no longer exists.
func (s *Store) RecordKubeEvent(ctx context.Context, ev KubeEvent) error {
	var index any
	if ev.InstanceIndex != nil {
		index = *ev.InstanceIndex
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO kube_events (uid, app_guid, process_guid, instance_index, build_guid, type, reason, message,
			count, first_seen, last_seen, namespace, involved_object_kind, involved_object_name, involved_object_uid)
		SELECT $1, $2, NULLIF($3, ''), $4::integer, NULLIF($5, ''), $6, $7, $8, $9, $10, $11, $12, $13, $14, $15
		WHERE EXISTS (SELECT 1 FROM apps WHERE guid = $2)
		ON CONFLICT (uid) DO UPDATE SET type = EXCLUDED.type, reason = EXCLUDED.reason, message = EXCLUDED.message,
			count = EXCLUDED.count, last_seen = EXCLUDED.last_seen
		WHERE kube_events.count < EXCLUDED.count OR kube_events.last_seen < EXCLUDED.last_seen`,
		ev.UID, ev.AppGUID, ev.ProcessGUID, index, ev.BuildGUID, ev.Type, ev.Reason, ev.Message, ev.Count,
		ev.FirstSeen, ev.LastSeen, ev.Namespace, ev.InvolvedKind, ev.InvolvedName, ev.InvolvedUID)
	err = mapError(err)
	var fk *ForeignKeyError
	if errors.As(err, &fk) {
		// The app was deleted between the EXISTS check and the insert.
		return nil
	}
	if err != nil {
		return fmt.Errorf("record Kubernetes event %s of app %s: %w", ev.UID, ev.AppGUID, err)
	}
	return nil
}

// KubeEvents returns the events f selects, the most recently seen first.
func (s *Store) KubeEvents(ctx context.Context, f KubeEventFilter) ([]KubeEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+kubeEventColumns+` FROM kube_events
		WHERE app_guid = $1 AND ($2 = '' OR process_guid = $2)
		ORDER BY last_seen DESC, uid LIMIT $3`, f.AppGUID, f.ProcessGUID, limit)
	if err != nil {
		return nil, fmt.Errorf("list Kubernetes events of app %s: %w", f.AppGUID, mapError(err))
	}
	defer rows.Close()

	events := []KubeEvent{}
	for rows.Next() {
		ev, err := scanKubeEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("list Kubernetes events of app %s: %w", f.AppGUID, err)
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list Kubernetes events of app %s: %w", f.AppGUID, mapError(err))
	}
	return events, nil
}

// PruneKubeEvents deletes the events last seen before olderThan and, of
// each app, every event but the maxPerApp most recently seen. maxPerApp
// below 1 keeps any number. It returns how many events it deleted.
func (s *Store) PruneKubeEvents(ctx context.Context, olderThan time.Time, maxPerApp int) (int64, error) {
	var deleted int64
	err := s.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM kube_events WHERE last_seen < $1`, olderThan)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected() // lib/pq always reports it.
		deleted += n
		if maxPerApp < 1 {
			return nil
		}
		res, err = tx.ExecContext(ctx, `
			DELETE FROM kube_events k USING (
				SELECT uid, row_number() OVER (PARTITION BY app_guid ORDER BY last_seen DESC, uid) AS rank
				FROM kube_events
			) ranked
			WHERE k.uid = ranked.uid AND ranked.rank > $1`, maxPerApp)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		deleted += n
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune Kubernetes events: %w", mapError(err))
	}
	return deleted, nil
}
