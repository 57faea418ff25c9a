package cfapi

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

func (a *API) auditEventRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/v3/audit_events", handler: a.listAuditEvents},
		{method: http.MethodGet, path: "/v3/audit_events/{guid}", handler: a.getAuditEvent},
	}
}

type auditEventJSON struct {
	GUID         string          `json:"guid"`
	CreatedAt    string          `json:"created_at"`
	UpdatedAt    string          `json:"updated_at"`
	Type         string          `json:"type"`
	Actor        auditPartyJSON  `json:"actor"`
	Target       auditPartyJSON  `json:"target"`
	Data         map[string]any  `json:"data"`
	Space        *guidRef        `json:"space"`
	Organization *guidRef        `json:"organization"`
	Links        auditEventLinks `json:"links"`
}

// auditPartyJSON is an audit event's actor or target.
type auditPartyJSON struct {
	GUID string `json:"guid"`
	Type string `json:"type"`
	Name string `json:"name"`
}

type auditEventLinks struct {
	Self link `json:"self"`
}

func (a *API) presentAuditEvent(ev store.AuditEvent) auditEventJSON {
	out := auditEventJSON{
		GUID:      ev.GUID,
		CreatedAt: timestamp(ev.CreatedAt),
		UpdatedAt: timestamp(ev.UpdatedAt),
		Type:      ev.Type,
		Actor:     auditPartyJSON{GUID: ev.ActorGUID, Type: ev.ActorType, Name: ev.ActorName},
		Target:    auditPartyJSON{GUID: ev.TargetGUID, Type: ev.TargetType, Name: ev.TargetName},
		Data:      ev.Data,
		Links:     auditEventLinks{Self: link{Href: a.url("/v3/audit_events/", ev.GUID)}},
	}
	if out.Data == nil {
		out.Data = map[string]any{}
	}
	if ev.SpaceGUID != "" {
		out.Space = &guidRef{GUID: ev.SpaceGUID}
	}
	if ev.OrganizationGUID != "" {
		out.Organization = &guidRef{GUID: ev.OrganizationGUID}
	}
	return out
}

var auditEventListSpec = withCommonFilters(listSpec{
	filters: []string{"types", "target_guids", "space_guids", "organization_guids"},
	orderBy: []string{"created_at", "updated_at"},
	extra:   []string{"target_guids[not]"},
})

// listAuditEvents serves GET /v3/audit_events. `cf events` sends
// order_by=-created_at&page=1&target_guids=APP and shows the first page only.
func (a *API) listAuditEvents(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	q, err := parseListQuery(r, auditEventListSpec)
	if err != nil {
		return nil, err
	}
	common, err := commonFilter(q)
	if err != nil {
		return nil, err
	}
	filter := store.AuditEventFilter{
		CommonFilter:      common,
		Types:             q.filter("types"),
		TargetGUIDs:       q.filter("target_guids"),
		ExcludeTargetGUID: q.filter("target_guids[not]"),
		SpaceGUIDs:        q.filter("space_guids"),
		OrganizationGUIDs: q.filter("organization_guids"),
	}

	events, total, err := a.store.AuditEvents(r.Context(), visibility(r), filter, q.page)
	if err != nil {
		return nil, err
	}

	resources := make([]auditEventJSON, len(events))
	for i, ev := range events {
		resources[i] = a.presentAuditEvent(ev)
	}
	return ok(a.list(r, q.page, total, resources)), nil
}

func (a *API) getAuditEvent(r *http.Request) (*response, error) {
	actor := actorOf(r)
	if err := requireRead(actor); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}

	ev, err := a.store.AuditEvent(r.Context(), visibility(r), pathParam(r, "guid"))
	if err != nil {
		return nil, notFoundAs(err, "Event")
	}
	return ok(a.presentAuditEvent(ev)), nil
}

// notFoundAs turns store.ErrNotFound into the CF 404 for resource and passes
// other errors through.
func notFoundAs(err error, resource string) error {
	if errors.Is(err, store.ErrNotFound) {
		return apierr.NotFound(resource)
	}
	return err
}

// Relational operators of the created_ats and updated_ats filters, as in
// created_ats[gte]=2024-01-01T00:00:00Z.
var timeOperators = []string{"lt", "lte", "gt", "gte"}

// withCommonFilters adds the filters every Cloud Controller list accepts:
// guids, created_ats and updated_ats with their relational operators.
func withCommonFilters(spec listSpec) listSpec {
	spec.filters = append([]string{"guids"}, spec.filters...)
	spec.filters = append(spec.filters, "created_ats", "updated_ats")
	for _, name := range []string{"created_ats", "updated_ats"} {
		for _, op := range timeOperators {
			spec.extra = append(spec.extra, name+"["+op+"]")
		}
	}
	return spec
}

// commonFilter parses the filters withCommonFilters declares.
func commonFilter(q *listQuery) (store.CommonFilter, error) {
	f := store.CommonFilter{GUIDs: q.filter("guids")}
	var err error
	if f.CreatedAts, err = timeFilter(q, "created_ats"); err != nil {
		return f, err
	}
	if f.UpdatedAts, err = timeFilter(q, "updated_ats"); err != nil {
		return f, err
	}
	return f, nil
}

// apiTimestamp is the only timestamp form Cloud Controller's filters accept.
var apiTimestamp = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$`)

// timeFilter parses name (equality with comma-separated values) and
// name[lt|lte|gt|gte] (one value each). Messages follow Cloud Controller's.
func timeFilter(q *listQuery, name string) (store.TimeFilter, error) {
	var f store.TimeFilter
	label := fieldLabel(strings.ReplaceAll(name, "_", " "))
	parse := func(v string) (time.Time, error) {
		if !apiTimestamp.MatchString(v) {
			return time.Time{}, apierr.BadQueryParameter(label + " has an invalid timestamp format. Timestamps should be formatted as 'YYYY-MM-DDThh:mm:ssZ'")
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, apierr.BadQueryParameter(label + " has an invalid timestamp: '" + v + "'")
		}
		return t, nil
	}

	for _, v := range q.filter(name) {
		t, err := parse(v)
		if err != nil {
			return f, err
		}
		f.Equal = append(f.Equal, t)
	}
	bounds := map[string]**time.Time{"lt": &f.LessThan, "lte": &f.LessOrEqual, "gt": &f.GreaterThan, "gte": &f.GreaterOrEqual}
	for _, op := range timeOperators {
		key := name + "[" + op + "]"
		if !q.has(key) {
			continue
		}
		v := q.values.Get(key)
		if strings.Contains(v, ",") {
			return f, apierr.BadQueryParameter(label + " only accepts one value when using a relational operator")
		}
		t, err := parse(v)
		if err != nil {
			return f, err
		}
		*bounds[op] = &t
	}
	return f, nil
}
