package k8sbackend

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/ferrycf/ferry/logcache"
	"github.com/ferrycf/ferry/store"
)

const (
	// auditBatch bounds the audit events one poll puts.
	auditBatch = 1000
	// maxAuditRequestBytes bounds the request shown in an "Updated app"
	// line.
	maxAuditRequestBytes = 4096
)

// privateDataHidden replaces hidden values, as Cloud Controller does.
const privateDataHidden = "PRIVATE DATA HIDDEN"

// hiddenRequestFields are the request fields whose values an API line never
// shows: Cloud Controller's censored app fields, and a few names that
// usually carry secrets. Audit events should hold none of these values,
// but an API line hides them again in case one does.
var hiddenRequestFields = map[string]bool{
	"environment_variables":      true,
	"environment_json":           true,
	"encrypted_environment_json": true,
	"command":                    true,
	"docker_credentials":         true,
	"docker_credentials_json":    true,
	"var":                        true,
	"credentials":                true,
	"password":                   true,
}

// backfillAuditEvents reads the app audit events of the backfill window,
// grouped by app GUID, and returns the tail that continues after them. The
// window is measured on the database server's clock.
func (c *LogCollector) backfillAuditEvents(ctx context.Context) (*store.AuditTail, map[string][]store.AuditEvent) {
	if c.o.Store == nil {
		return nil, nil
	}
	since, err := c.o.Store.DatabaseTime(ctx)
	if err != nil {
		c.o.Logger.Warn("reading the database time failed; API lines start at the controller's time", "error", err)
		since = time.Now()
	}
	tail := c.o.Store.TailAuditEvents("app", since)
	if c.o.BackfillWindow <= 0 {
		return tail, nil
	}

	tail = c.o.Store.TailAuditEvents("app", since.Add(-c.o.BackfillWindow))
	events, err := tail.Next(ctx, 0)
	if err != nil {
		if ctx.Err() == nil {
			c.o.Logger.Warn("reading back audit events failed; API lines start now", "error", err)
		}
		return c.o.Store.TailAuditEvents("app", since), nil
	}
	byApp := map[string][]store.AuditEvent{}
	for _, ev := range events {
		byApp[ev.TargetGUID] = append(byApp[ev.TargetGUID], ev)
	}
	return tail, byApp
}

// tailAuditEvents puts an API line for every new app audit event until ctx
// ends. A line may reach the sink up to one poll interval after newer
// lines of its app, and the sink then raises its timestamp.
func (c *LogCollector) tailAuditEvents(ctx context.Context, tail *store.AuditTail) {
	ticker := time.NewTicker(c.o.AuditPollInterval)
	defer ticker.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		events, err := tail.Next(ctx, auditBatch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			if failures == 1 || failures%60 == 0 {
				c.o.Logger.Warn("reading new audit events failed; retrying", "failures", failures, "error", err)
			}
			continue
		}
		failures = 0
		for _, ev := range events {
			if line, ok := auditLogLine(ev); ok {
				c.put(line.source, line.at, line.sourceType, line.payload)
			}
		}
	}
}

// auditLogLine returns the API line of an app audit event, and false for
// events that have none.
func auditLogLine(ev store.AuditEvent) (logLine, bool) {
	text := auditLogText(ev)
	if text == "" || ev.TargetType != "app" {
		return logLine{}, false
	}
	return logLine{at: ev.CreatedAt, source: logSource{SourceID: ev.TargetGUID, InstanceID: apiInstanceID},
		sourceType: logcache.SourceTypeAPI, payload: []byte(text)}, true
}

// auditLogText words an app audit event as Cloud Controller's API lines
// do, or returns "" for a type that has no line.
func auditLogText(ev store.AuditEvent) string {
	guid := ev.TargetGUID
	processType, _ := ev.Data["process_type"].(string)
	switch ev.Type {
	case "audit.app.create":
		return "Created app with guid " + guid
	case "audit.app.update", "audit.app.droplet.mapped":
		if request, ok := ev.Data["request"]; ok {
			return fmt.Sprintf("Updated app with guid %s (%s)", guid, auditRequestText(request))
		}
		return "Updated app with guid " + guid
	case "audit.app.start":
		return "Starting app with guid " + guid
	case "audit.app.stop":
		return "Stopping app with guid " + guid
	case "audit.app.restart":
		return "Restarted app with guid " + guid
	case "audit.app.restage":
		return "Restaging app with guid " + guid
	case "audit.app.delete-request":
		return "Deleted app with guid " + guid
	case "audit.app.apply_manifest":
		// The manifest may carry environment variable values.
		return "Applied manifest to app with guid " + guid
	case "audit.app.build.create":
		return "Creating build for app with guid " + guid
	case "audit.app.droplet.create":
		return "Creating droplet for app with guid " + guid
	case "audit.app.droplet.delete":
		return "Deleting droplet for app with guid " + guid
	case "audit.app.process.create":
		return fmt.Sprintf("Added process: %q", processType)
	case "audit.app.process.update":
		return fmt.Sprintf("Updating process: %q", processType)
	case "audit.app.process.scale":
		return fmt.Sprintf("Scaling process: %q", processType)
	case "audit.app.process.delete":
		return fmt.Sprintf("Deleting process: %q", processType)
	case "audit.app.process.terminate_instance":
		return fmt.Sprintf("Terminating process: %q, index: \"%v\"", processType, ev.Data["process_index"])
	case "audit.app.process.crash":
		// The crash event's actor is the process, named by its type.
		return fmt.Sprintf("Process has crashed with type: %q", ev.ActorName)
	}
	return ""
}

// auditRequestText renders an event's request as JSON, with hidden fields
// replaced, cut at maxAuditRequestBytes.
func auditRequestText(request any) string {
	raw, err := json.Marshal(hideRequestFields(request))
	if err != nil {
		return privateDataHidden
	}
	if len(raw) > maxAuditRequestBytes {
		cut := maxAuditRequestBytes
		for cut > 0 && !utf8.RuneStart(raw[cut]) {
			cut--
		}
		return string(raw[:cut]) + "..."
	}
	return string(raw)
}

// hideRequestFields returns a copy of v with the values of
// hiddenRequestFields replaced at any depth.
func hideRequestFields(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for key, value := range v {
			if hiddenRequestFields[key] {
				out[key] = privateDataHidden
				continue
			}
			out[key] = hideRequestFields(value)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, value := range v {
			out[i] = hideRequestFields(value)
		}
		return out
	}
	return v
}
