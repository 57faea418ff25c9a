package cfapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/manifest"
	"github.com/ferrycf/ferry/store"
)

// diffManifest serves POST /v3/spaces/:guid/manifest_diff, which cf push
// sends before apply_manifest when it reads a manifest file, and prints
// as a diff of the manifest. It returns 201, as Cloud Controller does.
// Every error for a visible space is a 4xx other than 404, or a 5xx: the
// cf CLI aborts the push on a 404, but only warns on a 5xx.
func (a *API) diffManifest(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := noQuery(r); err != nil {
		return nil, err
	}
	space, err := a.spaceForManifest(r)
	if err != nil {
		return nil, err
	}
	m, _, err := readManifest(r)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, app := range m.Applications {
		if app.Lifecycle != manifest.LifecycleDocker {
			continue
		}
		err := a.requireFlag(ctx, flagDiegoDocker)
		var apiErr *apierr.Error
		switch {
		case errors.As(err, &apiErr):
			problems = append(problems, "For application '"+app.Name+"': "+apiErr.Detail)
		case err != nil:
			return nil, err
		}
	}
	if len(problems) > 0 {
		return nil, manifestProblems(problems)
	}

	existing, err := a.appsByName(ctx, r, space, m)
	if err != nil {
		return nil, err
	}
	apps := make([]store.App, 0, len(existing))
	for _, app := range m.Applications {
		if current, found := existing[strings.ToLower(app.Name)]; found {
			apps = append(apps, current)
		}
	}
	states, err := a.appStates(ctx, apps)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*manifest.AppState, len(states))
	for i := range states {
		byName[strings.ToLower(states[i].Name)] = &states[i]
	}
	current := make([]*manifest.AppState, len(m.Applications))
	for i, app := range m.Applications {
		current[i] = byName[strings.ToLower(app.Name)]
	}

	changes := manifest.Diff(m, current)
	diff := make([]manifestChangeJSON, len(changes))
	for i, c := range changes {
		diff[i] = presentManifestChange(c)
	}
	return created(map[string]any{"diff": diff}), nil
}

// manifestChangeJSON is one entry of a manifest diff. An addition has no
// "was" and a removal no "value", as in Cloud Controller's diffs.
type manifestChangeJSON map[string]any

func presentManifestChange(c manifest.Change) manifestChangeJSON {
	out := manifestChangeJSON{"op": c.Op, "path": c.Path}
	if c.Op != manifest.OpAdd {
		out["was"] = jsonValue(c.Was)
	}
	if c.Op != manifest.OpRemove {
		out["value"] = jsonValue(c.Value)
	}
	return out
}

// jsonValue returns v, decoded from YAML, or nil when JSON cannot
// represent it, such as a YAML .nan.
func jsonValue(v any) any {
	if _, err := json.Marshal(v); err != nil {
		return nil
	}
	return v
}
