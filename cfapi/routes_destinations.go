package cfapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// Limits Cloud Controller sets on destinations.
const (
	maxDestinations = 100
	// defaultAppPort is the port a destination uses when it names none.
	//
	// NOTE: Cloud Controller uses the first port a docker image exposes for
	// docker apps, but Ferry uses 8080 for every app until destinations read
	// the droplet's ports.
	defaultAppPort = 8080
)

type destinationJSON struct {
	GUID     string             `json:"guid"`
	App      destinationAppJSON `json:"app"`
	Weight   *int               `json:"weight"`
	Port     int                `json:"port"`
	Protocol string             `json:"protocol"`
}

type destinationAppJSON struct {
	GUID    string `json:"guid"`
	Process struct {
		Type string `json:"type"`
	} `json:"process"`
}

func presentDestinations(destinations []store.Destination) []destinationJSON {
	out := make([]destinationJSON, len(destinations))
	for i, d := range destinations {
		out[i] = destinationJSON{GUID: d.GUID, App: destinationAppJSON{GUID: d.AppGUID}, Port: d.Port, Protocol: d.Protocol}
		out[i].App.Process.Type = d.ProcessType
		if d.Weight > 0 {
			weight := d.Weight
			out[i].Weight = &weight
		}
	}
	return out
}

// destinationsPayload is the body of POST and PATCH
// /v3/routes/:guid/destinations.
type destinationsPayload struct {
	Destinations *[]destinationPayload `json:"destinations"`
}

type destinationPayload struct {
	App *struct {
		GUID    string `json:"guid"`
		Process *struct {
			Type string `json:"type"`
		} `json:"process"`
	} `json:"app"`
	Weight   *int    `json:"weight"`
	Port     *int    `json:"port"`
	Protocol *string `json:"protocol"`
}

func (a *API) presentDestinationList(rt store.Route) map[string]any {
	self := a.url("/v3/routes/", rt.GUID)
	return map[string]any{
		"destinations": presentDestinations(rt.Destinations),
		"links": map[string]link{
			"self":  {Href: self + "/destinations"},
			"route": {Href: self},
		},
	}
}

func (a *API) listDestinations(r *http.Request) (*response, error) {
	if err := rejectUnknownParams(r.URL.Query(), []string{"guids", "app_guids"}); err != nil {
		return nil, err
	}
	rt, err := a.visibleRoute(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}
	query := r.URL.Query()
	kept := []store.Destination{}
	for _, d := range rt.Destinations {
		if query.Has("guids") && !slices.Contains(splitList(query.Get("guids")), d.GUID) {
			continue
		}
		if query.Has("app_guids") && !slices.Contains(splitList(query.Get("app_guids")), d.AppGUID) {
			continue
		}
		kept = append(kept, d)
	}
	rt.Destinations = kept
	return ok(a.presentDestinationList(rt)), nil
}

// validateDestinations checks destinations in Cloud Controller's words and
// returns them with defaults applied. replace allows weights and an empty
// list.
func validateDestinations(p *destinationsPayload, rt store.Route, replace bool) ([]store.Destination, error) {
	minimum := 1
	if replace {
		minimum = 0
	}
	if p.Destinations == nil || len(*p.Destinations) < minimum || len(*p.Destinations) > maxDestinations {
		return nil, apierr.UnprocessableEntity(fmt.Sprintf("Destinations must be an array containing between %d and %d destination objects.", minimum, maxDestinations))
	}

	var problems []string
	out := make([]store.Destination, 0, len(*p.Destinations))
	weighted := 0
	weightSum := 0
	for i, dp := range *p.Destinations {
		prefix := fmt.Sprintf("Destinations[%d]: ", i)
		if dp.App == nil || dp.App.GUID == "" {
			problems = append(problems, prefix+`app must have the structure {"guid": "app_guid"}`)
			continue
		}
		d := store.Destination{GUID: uuid.NewString(), AppGUID: dp.App.GUID, ProcessType: "web", Port: defaultAppPort}
		if dp.App.Process != nil {
			if dp.App.Process.Type == "" {
				problems = append(problems, prefix+`process must have the structure {"type": "process_type"}`)
				continue
			}
			d.ProcessType = dp.App.Process.Type
		}
		if dp.Weight != nil {
			switch {
			case !replace:
				problems = append(problems, prefix+"weighted destinations can only be used when replacing all destinations.")
			case *dp.Weight < 1 || *dp.Weight > 100:
				problems = append(problems, prefix+"weight must be a positive integer between 1 and 100.")
			default:
				d.Weight = *dp.Weight
				weighted++
				weightSum += *dp.Weight
			}
		}
		if dp.Port != nil {
			if *dp.Port < 1024 || *dp.Port > 65535 {
				problems = append(problems, prefix+"port must be a positive integer between 1024 and 65535 inclusive.")
			}
			d.Port = *dp.Port
		}
		d.Protocol = defaultDestinationProtocol(rt)
		if dp.Protocol != nil {
			if !slices.Contains([]string{store.DestinationProtocolHTTP1, store.DestinationProtocolHTTP2, store.DestinationProtocolTCP,
				store.DestinationProtocolUDP}, *dp.Protocol) {
				problems = append(problems, prefix+"protocol must be 'http1', 'http2', 'tcp' or 'udp'.")
			}
			d.Protocol = *dp.Protocol
		}
		out = append(out, d)
	}
	if len(problems) > 0 {
		return nil, apierr.UnprocessableEntity(strings.Join(problems, ", "))
	}
	switch {
	case weighted > 0 && weighted < len(out):
		return nil, apierr.UnprocessableEntity("Destinations cannot contain both weighted and unweighted destinations.")
	case weighted > 0 && weightSum != 100:
		return nil, apierr.UnprocessableEntity("Destinations must have weights that sum to 100.")
	}
	for _, d := range out {
		if err := checkDestinationProtocol(rt, d.Protocol); err != nil {
			return nil, err
		}
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if destinationsEqual(out[i], out[j]) {
				return nil, apierr.UnprocessableEntity("Destinations cannot contain duplicate entries")
			}
		}
	}
	return out, nil
}

// defaultDestinationProtocol is the protocol of a destination that names
// none: tcp on TCP routes, udp on UDP routes, http1 otherwise.
func defaultDestinationProtocol(rt store.Route) string {
	switch rt.Protocol {
	case store.RouteProtocolTCP:
		return store.DestinationProtocolTCP
	case store.RouteProtocolUDP:
		return store.DestinationProtocolUDP
	}
	return store.DestinationProtocolHTTP1
}

// checkDestinationProtocol fails when a destination's protocol does not fit
// its route's: http1 or http2 for HTTP routes, tcp for TCP routes and udp
// for UDP routes.
func checkDestinationProtocol(rt store.Route, protocol string) error {
	switch {
	case rt.Protocol == store.RouteProtocolTCP && protocol != store.DestinationProtocolTCP:
		return apierr.UnprocessableEntity("Destination protocol must be 'tcp' if the parent route's protocol is 'tcp'")
	case rt.Protocol == store.RouteProtocolUDP && protocol != store.DestinationProtocolUDP:
		return apierr.UnprocessableEntity("Destination protocol must be 'udp' if the parent route's protocol is 'udp': leave protocol out or send 'udp'")
	case rt.Protocol == store.RouteProtocolHTTP && (protocol == store.DestinationProtocolTCP || protocol == store.DestinationProtocolUDP):
		return apierr.UnprocessableEntity("Destination protocol must be 'http1' or 'http2' if the parent route's protocol is 'http'")
	}
	return nil
}

func destinationsEqual(x, y store.Destination) bool {
	return x.AppGUID == y.AppGUID && x.ProcessType == y.ProcessType && x.Port == y.Port && x.Protocol == y.Protocol
}

// destinationApps reads the apps the destinations name and checks that
// the actor may map them. Each app must be visible and in the route's
// space or a space the route is shared with. The actor must be an admin
// or a space developer there.
func (a *API) destinationApps(r *http.Request, rt store.Route, destinations []store.Destination) (map[string]store.App, error) {
	ctx := r.Context()
	actor := actorOf(r)
	apps := map[string]store.App{}
	var missing []string
	for _, d := range destinations {
		if _, seen := apps[d.AppGUID]; seen || slices.Contains(missing, d.AppGUID) {
			continue
		}
		app, err := a.store.App(ctx, visibility(r), d.AppGUID)
		if errors.Is(err, store.ErrNotFound) {
			missing = append(missing, d.AppGUID)
			continue
		}
		if err != nil {
			return nil, err
		}
		apps[app.GUID] = app
	}
	if len(missing) > 0 {
		return nil, apierr.UnprocessableEntity("App(s) with guid(s) " + quoteGUIDs(missing) + " do not exist or you do not have access.")
	}

	shared, err := a.store.RouteSharedSpaces(ctx, rt.GUID, store.Visibility{All: true})
	if err != nil {
		return nil, err
	}
	for _, app := range apps {
		if app.SpaceGUID != rt.SpaceGUID && !slices.Contains(shared, app.SpaceGUID) {
			return nil, apierr.UnprocessableEntity("Routes cannot be mapped to destinations in different spaces.")
		}
		if err := a.authorizeSpaceRole(ctx, actor, app.OrgGUID, app.SpaceGUID, roleSpaceDeveloper); err != nil {
			return nil, err
		}
	}
	return apps, nil
}

// quoteGUIDs renders guids as Cloud Controller lists them in messages.
func quoteGUIDs(guids []string) string {
	quoted := make([]string, len(guids))
	for i, g := range guids {
		quoted[i] = `"` + g + `"`
	}
	return strings.Join(quoted, ", ")
}

// routeForDestinations reads the route of the path for a destination
// change: admins and space developers of the route's space or of a space
// it is shared with may change it.
func (a *API) routeForDestinations(r *http.Request) (store.Route, error) {
	rt, err := a.visibleRoute(r, pathParam(r, "guid"))
	if err != nil {
		return store.Route{}, err
	}
	if err := requireWrite(actorOf(r)); err != nil {
		return store.Route{}, err
	}
	return rt, nil
}

// addDestinations serves POST /v3/routes/:guid/destinations. Destinations
// equal to existing ones are kept once.
func (a *API) addDestinations(r *http.Request) (*response, error) {
	return a.changeDestinations(r, false)
}

// replaceDestinations serves PATCH /v3/routes/:guid/destinations: the
// route's destinations become exactly the ones in the body.
func (a *API) replaceDestinations(r *http.Request) (*response, error) {
	return a.changeDestinations(r, true)
}

func (a *API) changeDestinations(r *http.Request, replace bool) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	rt, err := a.routeForDestinations(r)
	if err != nil {
		return nil, err
	}
	var p destinationsPayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	destinations, err := validateDestinations(&p, rt, replace)
	if err != nil {
		return nil, err
	}
	if len(destinations) == 0 {
		// Removing every destination needs write access to the route's space.
		if err := a.authorizeSpaceRole(ctx, actor, rt.OrgGUID, rt.SpaceGUID, roleSpaceDeveloper); err != nil {
			return nil, err
		}
	}
	apps, err := a.destinationApps(r, rt, destinations)
	if err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		if err := store.LockRoute(ctx, tx, rt.GUID); err != nil {
			return err
		}
		before, err := store.RouteDestinationsThrough(ctx, tx, rt.GUID)
		if err != nil {
			return err
		}
		if replace {
			err = store.ReplaceDestinations(ctx, tx, rt.GUID, destinations)
		} else {
			err = addDestinationsChecked(ctx, tx, rt.GUID, before, destinations)
		}
		if err != nil {
			return err
		}
		after, err := store.RouteDestinationsThrough(ctx, tx, rt.GUID)
		if err != nil {
			return err
		}
		if len(after) > maxDestinations {
			return apierr.UnprocessableEntity("Routes can be mapped to at most 100 destinations.")
		}
		return a.recordDestinationEvents(ctx, tx, actor, rt, apps, before, after)
	})
	var fkErr *store.ForeignKeyError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, apierr.NotFound("Route")
	case errors.As(err, &fkErr):
		// An app was deleted after it was read.
		return nil, apierr.UnprocessableEntity("App(s) with guid(s) " + quoteGUIDs(appGUIDsOf(destinations)) + " do not exist or you do not have access.")
	case err != nil:
		return nil, err
	}

	rt, err = a.store.Route(ctx, rt.GUID, store.Visibility{All: true})
	if err != nil {
		return nil, err
	}
	return ok(a.presentDestinationList(rt)), nil
}

// addDestinationsChecked adds destinations unless the route has weighted
// destinations, which Cloud Controller only lets a replace change.
func addDestinationsChecked(ctx context.Context, tx *sql.Tx, routeGUID string, before, destinations []store.Destination) error {
	for _, d := range before {
		if d.Weight > 0 {
			return apierr.UnprocessableEntity("Destinations cannot be inserted when there are weighted destinations already configured.")
		}
	}
	return store.AddDestinations(ctx, tx, routeGUID, destinations)
}

func appGUIDsOf(destinations []store.Destination) []string {
	var guids []string
	for _, d := range destinations {
		if !slices.Contains(guids, d.AppGUID) {
			guids = append(guids, d.AppGUID)
		}
	}
	return guids
}

// recordDestinationEvents records audit.app.map-route for each destination
// in after but not in before, and audit.app.unmap-route for each one
// removed, on the destination's app.
func (a *API) recordDestinationEvents(ctx context.Context, tx *sql.Tx, actor *auth.Actor, rt store.Route,
	apps map[string]store.App, before, after []store.Destination) error {
	beforeGUIDs := map[string]bool{}
	for _, d := range before {
		beforeGUIDs[d.GUID] = true
	}
	afterGUIDs := map[string]bool{}
	for _, d := range after {
		afterGUIDs[d.GUID] = true
		if !beforeGUIDs[d.GUID] {
			if err := a.recordDestinationEvent(ctx, tx, actor, "audit.app.map-route", rt, apps, d); err != nil {
				return err
			}
		}
	}
	for _, d := range before {
		if !afterGUIDs[d.GUID] {
			if err := a.recordDestinationEvent(ctx, tx, actor, "audit.app.unmap-route", rt, apps, d); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *API) recordDestinationEvent(ctx context.Context, tx *sql.Tx, actor *auth.Actor, eventType string, rt store.Route,
	apps map[string]store.App, d store.Destination) error {
	app, ok := apps[d.AppGUID]
	if !ok {
		found, err := a.store.App(ctx, store.Visibility{All: true}, d.AppGUID)
		if err != nil {
			return err
		}
		app = found
	}
	data := map[string]any{
		"route_guid":       rt.GUID,
		"app_port":         d.Port,
		"destination_guid": d.GUID,
		"process_type":     d.ProcessType,
		"protocol":         d.Protocol,
	}
	if d.Weight > 0 {
		data["weight"] = d.Weight
	} else {
		data["weight"] = nil
	}
	return store.RecordAuditEvent(ctx, tx, appEvent(actor, eventType, app, data))
}

// removeDestination serves DELETE /v3/routes/:guid/destinations/:guid,
// which cf unmap-route calls. Weighted destinations can only be removed by
// replacing all of them, as in Cloud Controller.
func (a *API) removeDestination(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	rt, err := a.routeForDestinations(r)
	if err != nil {
		return nil, err
	}
	unknown := apierr.UnprocessableEntity("Unable to unmap route from destination. Ensure the route has a destination with this guid.")
	guid := pathParam(r, "destination_guid")
	i := slices.IndexFunc(rt.Destinations, func(d store.Destination) bool { return d.GUID == guid })
	if i < 0 {
		return nil, unknown
	}
	target := rt.Destinations[i]
	if target.Weight > 0 {
		return nil, apierr.UnprocessableEntity("Weighted destinations cannot be deleted individually.")
	}
	app, err := a.store.App(ctx, store.Visibility{All: true}, target.AppGUID)
	if err != nil {
		return nil, err
	}
	if err := a.authorizeSpaceRole(ctx, actor, app.OrgGUID, app.SpaceGUID, roleSpaceDeveloper); err != nil {
		if err := a.authorizeSpaceRole(ctx, actor, rt.OrgGUID, rt.SpaceGUID, roleSpaceDeveloper); err != nil {
			return nil, err
		}
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		d, err := store.DeleteDestination(ctx, tx, rt.GUID, guid)
		if err != nil {
			return err
		}
		return a.recordDestinationEvent(ctx, tx, actor, "audit.app.unmap-route", rt, map[string]store.App{app.GUID: app}, d)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknown
	}
	if err != nil {
		return nil, err
	}
	return noContent(), nil
}
