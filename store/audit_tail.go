package store

import (
	"context"
	"fmt"
	"time"
)

// AuditTailOverlap is how far before the newest event already returned an
// AuditTail looks again on each read. created_at is the start time of the
// recording transaction, so a transaction that commits late adds a row
// older than rows already read. An event whose transaction commits more
// than AuditTailOverlap after it started is never returned.
const AuditTailOverlap = 30 * time.Second

// auditTailPage is how many rows one query of an AuditTail reads.
const auditTailPage = 500

// AuditTail is a reader of the audit events recorded after a point in
// time, which returns each event once, in created_at order. It polls the audit_events table, because no
// trigger announces new audit events. An AuditTail is not safe for
// concurrent use.
type AuditTail struct {
	store      *Store
	targetType string
	since      time.Time
	// newest is the greatest created_at returned so far.
	newest time.Time
	// seen contains the events returned whose created_at is within
	// AuditTailOverlap of newest, as those rows are read again.
	seen map[string]time.Time
}

// TailAuditEvents returns a tail of the audit events created at or after
// since whose target_type is targetType, or of every event when targetType
// is "". Take since from DatabaseTime, because created_at comes from the
// database server's clock.
func (s *Store) TailAuditEvents(targetType string, since time.Time) *AuditTail {
	return &AuditTail{store: s, targetType: targetType, since: since, seen: map[string]time.Time{}}
}

// DatabaseTime returns the current time of the database server.
func (s *Store) DatabaseTime(ctx context.Context) (time.Time, error) {
	var now time.Time
	if err := s.db.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return time.Time{}, fmt.Errorf("read the database time: %w", mapError(err))
	}
	return now, nil
}

// Next returns the events not returned before, oldest first. It returns
// at most limit events, and all new events when limit is 0 or less.
func (t *AuditTail) Next(ctx context.Context, limit int) ([]AuditEvent, error) {
	from := t.since
	if overlap := t.newest.Add(-AuditTailOverlap); overlap.After(from) {
		from = overlap
	}

	var events []AuditEvent
	afterGUID := ""
	for {
		page, err := t.page(ctx, from, afterGUID)
		if err != nil {
			return nil, err
		}
		for _, ev := range page {
			if _, ok := t.seen[ev.GUID]; ok {
				continue
			}
			events = append(events, ev)
			if limit > 0 && len(events) == limit {
				break
			}
		}
		if len(page) < auditTailPage || (limit > 0 && len(events) == limit) {
			break
		}
		last := page[len(page)-1]
		from, afterGUID = last.CreatedAt, last.GUID
	}

	for _, ev := range events {
		t.seen[ev.GUID] = ev.CreatedAt
		if ev.CreatedAt.After(t.newest) {
			t.newest = ev.CreatedAt
		}
	}
	t.forgetOld()
	return events, nil
}

// page reads one page of events ordered by (created_at, guid), starting
// after the row (from, afterGUID), or at from when afterGUID is "".
func (t *AuditTail) page(ctx context.Context, from time.Time, afterGUID string) ([]AuditEvent, error) {
	a := args{from}
	where := "e.created_at >= $1"
	if afterGUID != "" {
		where = "(e.created_at, e.guid) > ($1, " + a.add(afterGUID) + ")"
	}
	if t.targetType != "" {
		where += " AND e.target_type = " + a.add(t.targetType)
	}
	query := `SELECT ` + auditEventColumns + ` FROM audit_events e WHERE ` + where +
		` ORDER BY e.created_at, e.guid LIMIT ` + a.add(auditTailPage)
	rows, err := t.store.db.QueryContext(ctx, query, a...)
	if err != nil {
		return nil, fmt.Errorf("tail audit events: %w", mapError(err))
	}
	defer rows.Close()

	var page []AuditEvent
	for rows.Next() {
		ev, err := scanAuditEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("tail audit events: %w", err)
		}
		page = append(page, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tail audit events: %w", mapError(err))
	}
	return page, nil
}

// forgetOld drops the seen events that no read reaches any more.
func (t *AuditTail) forgetOld() {
	horizon := t.newest.Add(-AuditTailOverlap)
	for guid, created := range t.seen {
		if created.Before(horizon) {
			delete(t.seen, guid)
		}
	}
}
