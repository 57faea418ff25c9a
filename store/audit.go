package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// AuditEvent is one Cloud Controller audit event. Data must never contain
// secrets or environment variable values; callers redact before recording.
type AuditEvent struct {
	GUID             string
	Type             string
	ActorGUID        string
	ActorType        string
	ActorName        string
	TargetGUID       string
	TargetType       string
	TargetName       string
	SpaceGUID        string
	OrganizationGUID string
	Data             map[string]any
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// RecordAuditEvent inserts ev through q, which should be the transaction of
// the change it records, so the event and the change commit together.
func RecordAuditEvent(ctx context.Context, q querier, ev AuditEvent) error {
	if ev.GUID == "" {
		ev.GUID = uuid.NewString()
	}
	data := ev.Data
	if data == nil {
		data = map[string]any{}
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("record audit event %s: %w", ev.Type, err)
	}
	_, err = q.ExecContext(ctx, `
		INSERT INTO audit_events (guid, type, actor_guid, actor_type, actor_name, target_guid, target_type,
			target_name, space_guid, organization_guid, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, ''), NULLIF($10, ''), $11)`,
		ev.GUID, ev.Type, ev.ActorGUID, ev.ActorType, ev.ActorName, ev.TargetGUID, ev.TargetType,
		ev.TargetName, ev.SpaceGUID, ev.OrganizationGUID, raw)
	if err != nil {
		return fmt.Errorf("record audit event %s: %w", ev.Type, mapError(err))
	}
	return nil
}
