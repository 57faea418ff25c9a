package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"
)

// TimeFilter is Cloud Controller's created_ats / updated_ats filter. Every
// bound has second precision, as the API's timestamps do: Equal matches the
// whole second of each value, LessOrEqual and GreaterThan include and exclude
// the whole second of their value.
type TimeFilter struct {
	Equal          []time.Time
	LessThan       *time.Time
	LessOrEqual    *time.Time
	GreaterThan    *time.Time
	GreaterOrEqual *time.Time
}

// lastInstant is the last microsecond PostgreSQL can store within the second
// that starts at t.
func lastInstant(t time.Time) time.Time { return t.Add(time.Second - time.Microsecond) }

// condition renders the filter on column col, or "" when it is empty.
func (f TimeFilter) condition(col string, a *args) string {
	var parts []string
	if len(f.Equal) > 0 {
		var seconds []string
		for _, t := range f.Equal {
			seconds = append(seconds, "("+col+" >= "+a.add(t)+" AND "+col+" <= "+a.add(lastInstant(t))+")")
		}
		parts = append(parts, "("+strings.Join(seconds, " OR ")+")")
	}
	if f.LessThan != nil {
		parts = append(parts, col+" < "+a.add(*f.LessThan))
	}
	if f.LessOrEqual != nil {
		parts = append(parts, col+" <= "+a.add(lastInstant(*f.LessOrEqual)))
	}
	if f.GreaterThan != nil {
		parts = append(parts, col+" > "+a.add(lastInstant(*f.GreaterThan)))
	}
	if f.GreaterOrEqual != nil {
		parts = append(parts, col+" >= "+a.add(*f.GreaterOrEqual))
	}
	return strings.Join(parts, " AND ")
}

// CommonFilter holds the filters every Cloud Controller list accepts.
type CommonFilter struct {
	GUIDs      []string
	CreatedAts TimeFilter
	UpdatedAts TimeFilter
}

// conditions appends the common filters on a table aliased as alias.
func (f CommonFilter) conditions(alias string, a *args, where []string) []string {
	if f.GUIDs != nil {
		where = append(where, alias+".guid = ANY("+a.add(pq.Array(f.GUIDs))+")")
	}
	if c := f.CreatedAts.condition(alias+".created_at", a); c != "" {
		where = append(where, c)
	}
	if c := f.UpdatedAts.condition(alias+".updated_at", a); c != "" {
		where = append(where, c)
	}
	return where
}

// AuditEventFilter selects audit events; a nil slice does not filter.
type AuditEventFilter struct {
	CommonFilter
	Types             []string
	TargetGUIDs       []string
	ExcludeTargetGUID []string
	SpaceGUIDs        []string
	OrganizationGUIDs []string
}

const auditEventColumns = `e.guid, e.type, e.actor_guid, e.actor_type, e.actor_name, e.target_guid, e.target_type,
	e.target_name, COALESCE(e.space_guid, ''), COALESCE(e.organization_guid, ''), e.data, e.created_at, e.updated_at`

func scanAuditEvent(row interface{ Scan(...any) error }, extra ...any) (AuditEvent, error) {
	var ev AuditEvent
	var data []byte
	dest := []any{&ev.GUID, &ev.Type, &ev.ActorGUID, &ev.ActorType, &ev.ActorName, &ev.TargetGUID, &ev.TargetType,
		&ev.TargetName, &ev.SpaceGUID, &ev.OrganizationGUID, &data, &ev.CreatedAt, &ev.UpdatedAt}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return AuditEvent{}, mapError(err)
	}
	if err := json.Unmarshal(data, &ev.Data); err != nil {
		return AuditEvent{}, fmt.Errorf("decode data of audit event %s: %w", ev.GUID, err)
	}
	return ev, nil
}

// auditEventCondition restricts audit events to those the actor may read,
// following Cloud Controller: events of spaces where the actor is a space
// auditor, developer or supporter, and events of orgs where the actor is an
// org auditor. Space and org managers see no events through their manager
// role, and being an event's actor does not make it visible.
func (v Visibility) auditEventCondition(a *args) string {
	if v.All {
		return "TRUE"
	}
	u := a.add(v.UserGUID)
	return `(e.space_guid IN (SELECT space_guid FROM roles WHERE user_guid = ` + u + `
			AND type IN ('space_auditor', 'space_developer', 'space_supporter'))
		OR e.organization_guid IN (SELECT organization_guid FROM roles WHERE user_guid = ` + u + `
			AND type = 'organization_auditor'))`
}

var auditEventOrder = map[string]string{"created_at": "e.created_at", "updated_at": "e.updated_at"}

// AuditEvents returns one page of the audit events visible under vis and the
// total number of matching events.
func (s *Store) AuditEvents(ctx context.Context, vis Visibility, f AuditEventFilter, page Page) ([]AuditEvent, int, error) {
	var a args
	where := []string{vis.auditEventCondition(&a)}
	where = f.conditions("e", &a, where)
	if f.Types != nil {
		where = append(where, "e.type = ANY("+a.add(pq.Array(f.Types))+")")
	}
	if f.TargetGUIDs != nil {
		where = append(where, "e.target_guid = ANY("+a.add(pq.Array(f.TargetGUIDs))+")")
	}
	if f.ExcludeTargetGUID != nil {
		where = append(where, "NOT (e.target_guid = ANY("+a.add(pq.Array(f.ExcludeTargetGUID))+"))")
	}
	if f.SpaceGUIDs != nil {
		where = append(where, "e.space_guid = ANY("+a.add(pq.Array(f.SpaceGUIDs))+")")
	}
	if f.OrganizationGUIDs != nil {
		where = append(where, "e.organization_guid = ANY("+a.add(pq.Array(f.OrganizationGUIDs))+")")
	}

	query := `SELECT ` + auditEventColumns + `, COUNT(*) OVER() FROM audit_events e WHERE ` +
		strings.Join(where, " AND ") + page.orderBy(auditEventOrder, "e.guid") + page.limitOffset()
	rows, err := s.db.QueryContext(ctx, query, a...)
	if err != nil {
		return nil, 0, fmt.Errorf("list audit events: %w", mapError(err))
	}
	defer rows.Close()

	events := []AuditEvent{}
	total := 0
	for rows.Next() {
		ev, err := scanAuditEvent(rows, &total)
		if err != nil {
			return nil, 0, fmt.Errorf("list audit events: %w", err)
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list audit events: %w", mapError(err))
	}
	if len(events) == 0 && page.Number > 1 {
		total, err = s.countRows(ctx, "audit_events e", where, a)
	}
	return events, total, err
}

// countRows counts the rows of from matching where. List methods call it
// only for a page past the last one, where COUNT(*) OVER() has no row to
// ride on.
func (s *Store) countRows(ctx context.Context, from string, where []string, a args) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+from+` WHERE `+strings.Join(where, " AND "), a...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", from, mapError(err))
	}
	return n, nil
}

// AuditEvent returns one audit event, or ErrNotFound when it does not
// exist or vis may not read it.
func (s *Store) AuditEvent(ctx context.Context, vis Visibility, guid string) (AuditEvent, error) {
	a := args{guid}
	row := s.db.QueryRowContext(ctx, `SELECT `+auditEventColumns+` FROM audit_events e
		WHERE e.guid = $1 AND `+vis.auditEventCondition(&a), a...)
	ev, err := scanAuditEvent(row)
	if err != nil {
		return AuditEvent{}, fmt.Errorf("audit event %s: %w", guid, err)
	}
	return ev, nil
}
