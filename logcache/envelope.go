// Package logcache keeps recent app and staging log lines in memory and
// serves them in the log-cache envelope format the cf CLI reads.
package logcache

import "strings"

// Source types of envelopes, as Cloud Foundry tags them. An app process's
// lines carry "APP/PROC/" plus the upper-cased process type, and a task's
// "APP/TASK/" plus the task name.
const (
	SourceTypeStaging = "STG"
	SourceTypeAPI     = "API"
	SourceTypeCell    = "CELL"
	SourceTypeRouter  = "RTR"
)

// Log stream types.
const (
	StreamOut = "OUT"
	StreamErr = "ERR"
)

// Envelope is one log line of a source.
type Envelope struct {
	// Timestamp is in Unix nanoseconds. The store raises it when needed so
	// that timestamps of one source strictly increase.
	Timestamp int64
	// SourceID is the GUID of the app the line belongs to; staging lines
	// belong to the app too.
	SourceID string
	// InstanceID is the instance index as a decimal string, or "" when the
	// line belongs to no instance.
	InstanceID string
	// SourceType is one of the SourceType constants or an APP/... type.
	SourceType string
	// Stream is StreamOut or StreamErr.
	Stream  string
	Payload []byte
}

// Sink receives log lines. Put never blocks for long and never fails: a
// full buffer drops its oldest lines.
type Sink interface {
	Put(Envelope)
}

// ProcessSourceType returns the source type of the lines of an app
// process of processType, e.g. "APP/PROC/WEB" for "web".
func ProcessSourceType(processType string) string {
	return "APP/PROC/" + strings.ToUpper(processType)
}

// TaskSourceType returns the source type of a task's lines.
func TaskSourceType(taskName string) string { return "APP/TASK/" + taskName }
