package cfapi

import "time"

// timestamp renders t as Cloud Controller does: RFC 3339 in UTC, seconds.
// The cf CLI parses task and audit event times with this layout.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// guidRef is {"guid": …}.
type guidRef struct {
	GUID string `json:"guid"`
}

// toOne is a to-one relationship. The cf CLI decodes every relationship of
// apps, spaces, processes, packages and roles as to-one, so data is an
// object or null, never an array.
type toOne struct {
	Data *guidRef `json:"data"`
}

func relTo(guid string) toOne {
	if guid == "" {
		return toOne{}
	}
	return toOne{Data: &guidRef{GUID: guid}}
}

// toMany is a to-many relationship, used only where Cloud Controller uses it
// (e.g. a domain's shared organizations).
type toMany struct {
	Data []guidRef `json:"data"`
}
