package cfapi

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// Feature flags that gate reading an app's environment, as in Cloud
// Controller. env_var_visibility applies to every actor, but
// space_developer_env_var_visibility does not apply to admins and
// read-only admins.
const (
	flagEnvVarVisibility               = "env_var_visibility"
	flagSpaceDeveloperEnvVarVisibility = "space_developer_env_var_visibility"
)

// instanceFileDescriptorLimit is the file descriptor limit VCAP_APPLICATION
// reports, Cloud Controller's default instance_file_descriptor_limit.
const instanceFileDescriptorLimit = 16384

// Environment variable names Cloud Controller reserves for the platform.
// The checks ignore case. "VMC" has no underscore on purpose: Cloud
// Controller rejects every name starting with VMC.
var (
	reservedVCAPPrefix = regexp.MustCompile(`(?i)^VCAP_`)
	reservedVMCPrefix  = regexp.MustCompile(`(?i)^VMC`)
	reservedPort       = regexp.MustCompile(`(?i)^PORT$`)
)

// parseEnvironmentVariables validates an object of environment variables,
// naming it field in messages. A string value sets a variable and null
// leaves it unset (or unsets it on PATCH), so its value is nil. Other
// values are rejected, because every variable becomes a process
// environment string. An absent or null object is an error when required,
// and otherwise returns nil. Messages never quote a string value.
func parseEnvironmentVariables(raw json.RawMessage, field string, required bool) (map[string]*string, error) {
	if len(raw) == 0 || isJSONNull(raw) {
		if required {
			return nil, apierr.UnprocessableEntity(field + " must be an object")
		}
		return nil, nil
	}
	var values map[string]json.RawMessage
	if err := json.Unmarshal(raw, &values); err != nil || values == nil {
		return nil, apierr.UnprocessableEntity(field + " must be an object")
	}

	keys := make([]string, 0, len(values))
	for key := range values {
		keys = append(keys, key)
	}
	slices.Sort(keys)

	env := make(map[string]*string, len(values))
	var problems []string
	for _, key := range keys {
		if msg := environmentKeyProblem(key); msg != "" {
			problems = append(problems, field+" "+msg)
			continue
		}
		value := values[key]
		if isJSONNull(value) {
			env[key] = nil
			continue
		}
		var s string
		if err := json.Unmarshal(value, &s); err != nil {
			problems = append(problems, "Non-string value in environment variable for key '"+shorten(key)+"', value '"+shorten(compactJSON(value))+"'")
			continue
		}
		env[key] = &s
	}
	if len(problems) > 0 {
		return nil, apierr.UnprocessableEntity(strings.Join(problems, ", "))
	}
	return env, nil
}

// environmentKeyProblem describes what is wrong with an environment
// variable name, in Cloud Controller's words where it has them, or returns
// "" for a valid name.
func environmentKeyProblem(key string) string {
	switch {
	case key == "":
		return "key must be a minimum length of 1"
	case reservedVCAPPrefix.MatchString(key):
		return "cannot start with VCAP_"
	case reservedVMCPrefix.MatchString(key):
		return "cannot start with VMC_"
	case reservedPort.MatchString(key):
		return "cannot set PORT"
	case strings.ContainsAny(key, "=\x00"):
		// A process environment entry is NAME=value, so such a name
		// could never reach the app.
		return "key '" + shorten(key) + "' must not contain '=' or NUL characters"
	}
	return ""
}

// compactJSON renders a JSON value on one line for an error message.
func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// appEnvironmentVariablesPayload is the body of PATCH
// /v3/apps/:guid/environment_variables.
type appEnvironmentVariablesPayload struct {
	Var json.RawMessage `json:"var"`
}

type appEnvironmentVariablesJSON struct {
	Var   map[string]string `json:"var"`
	Links map[string]link   `json:"links"`
}

func (a *API) presentAppEnvironmentVariables(app store.App) appEnvironmentVariablesJSON {
	env := app.EnvironmentVariables
	if env == nil {
		env = map[string]string{}
	}
	self := a.url("/v3/apps/", app.GUID)
	return appEnvironmentVariablesJSON{
		Var: env,
		Links: map[string]link{
			"self": {Href: self + "/environment_variables"},
			"app":  {Href: self},
		},
	}
}

// appForEnvironmentRead returns the app of the path if the actor of r may
// read its environment variables: admins, read-only admins, and the
// space's developers and supporters, while the env_var_visibility flag is
// enabled. For everyone but admins and read-only admins, the
// space_developer_env_var_visibility flag must be enabled too. Global
// auditors get a 403, as in Cloud Controller.
func (a *API) appForEnvironmentRead(r *http.Request) (store.App, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := a.requireFlag(ctx, flagEnvVarVisibility); err != nil {
		return store.App{}, err
	}
	app, err := a.appForRead(r, pathParam(r, "guid"))
	if err != nil {
		return store.App{}, err
	}
	allowed, err := a.hasGlobalSecretsOrSpaceRole(ctx, actor, app, roleSpaceDeveloper, roleSpaceSupporter)
	if err != nil {
		return store.App{}, err
	}
	if !allowed {
		return store.App{}, apierr.NotAuthorized()
	}
	if !actor.IsAdmin() && !actor.HasScope(auth.ScopeAdminReadOnly) {
		if err := a.requireFlag(ctx, flagSpaceDeveloperEnvVarVisibility); err != nil {
			return store.App{}, err
		}
	}
	return app, nil
}

// recordEnvironmentRead records that the actor of r read the environment of
// app, as Cloud Controller does for every read of an app's variables.
func (a *API) recordEnvironmentRead(r *http.Request, app store.App, eventType string) error {
	return store.RecordAuditEvent(r.Context(), a.store.DB(), appEvent(actorOf(r), eventType, app, nil))
}

// getAppEnvironmentVariables serves GET /v3/apps/:guid/environment_variables.
func (a *API) getAppEnvironmentVariables(r *http.Request) (*response, error) {
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForEnvironmentRead(r)
	if err != nil {
		return nil, err
	}
	if err := a.recordEnvironmentRead(r, app, "audit.app.environment_variables.show"); err != nil {
		return nil, err
	}
	return ok(a.presentAppEnvironmentVariables(app)), nil
}

// updateAppEnvironmentVariables serves PATCH
// /v3/apps/:guid/environment_variables (cf set-env and cf unset-env) for
// admins, space developers and space supporters. The body's variables
// are merged into the app's: a string sets a variable, null unsets it, and
// variables not named stay. The audit event hides every name and value.
func (a *API) updateAppEnvironmentVariables(r *http.Request) (*response, error) {
	ctx := r.Context()
	actor := actorOf(r)
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForManage(r, pathParam(r, "guid"))
	if err != nil {
		return nil, err
	}

	var p appEnvironmentVariablesPayload
	if err := decodeBody(r, &p); err != nil {
		return nil, err
	}
	patch, err := parseEnvironmentVariables(p.Var, "Var", true)
	if err != nil {
		return nil, err
	}

	err = a.store.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if app, err = store.PatchAppEnvironment(ctx, tx, app.GUID, patch); err != nil {
			return err
		}
		request := map[string]any{"environment_variables": privateDataHidden}
		return store.RecordAuditEvent(ctx, tx, appEvent(actor, "audit.app.update", app, map[string]any{"request": request}))
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errAppNotFound()
	}
	if err != nil {
		return nil, err
	}
	loggerFrom(ctx, a.logger).Info("app environment variables changed", "app_guid", app.GUID, "variables_changed", len(patch))
	return ok(a.presentAppEnvironmentVariables(app)), nil
}

type appEnvJSON struct {
	EnvironmentVariables map[string]string `json:"environment_variables"`
	StagingEnvJSON       map[string]string `json:"staging_env_json"`
	RunningEnvJSON       map[string]string `json:"running_env_json"`
	SystemEnvJSON        map[string]any    `json:"system_env_json"`
	ApplicationEnvJSON   map[string]any    `json:"application_env_json"`
}

// getAppEnv serves GET /v3/apps/:guid/env (cf env): the app's variables
// and what the platform adds. system_env_json, which holds service
// credentials, is redacted for space supporters, as in Cloud Controller.
func (a *API) getAppEnv(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := noQuery(r); err != nil {
		return nil, err
	}
	app, err := a.appForEnvironmentRead(r)
	if err != nil {
		return nil, err
	}
	showSecrets, err := a.canReadAppSecrets(ctx, actorOf(r), app)
	if err != nil {
		return nil, err
	}
	vcapApplication, err := a.vcapApplication(r, app)
	if err != nil {
		return nil, err
	}
	if err := a.recordEnvironmentRead(r, app, "audit.app.environment.show"); err != nil {
		return nil, err
	}

	staging, err := a.store.EnvironmentVariableGroup(ctx, store.EnvironmentVariableGroupStaging)
	if err != nil {
		return nil, err
	}
	running, err := a.store.EnvironmentVariableGroup(ctx, store.EnvironmentVariableGroupRunning)
	if err != nil {
		return nil, err
	}

	// TODO: fill VCAP_SERVICES from service bindings once Ferry stores
	// them.
	system := map[string]any{"VCAP_SERVICES": map[string]any{}}
	if !showSecrets {
		system = map[string]any{"redacted_message": privateDataHidden}
	}
	env := app.EnvironmentVariables
	if env == nil {
		env = map[string]string{}
	}
	return ok(appEnvJSON{
		EnvironmentVariables: env,
		StagingEnvJSON:       staging.Variables,
		RunningEnvJSON:       running.Variables,
		SystemEnvJSON:        system,
		ApplicationEnvJSON:   map[string]any{"VCAP_APPLICATION": vcapApplication},
	}), nil
}

// vcapApplication builds the app-level VCAP_APPLICATION that cf env shows.
// Running instances get more fields, such as the instance index.
func (a *API) vcapApplication(r *http.Request, app store.App) (map[string]any, error) {
	ctx := r.Context()
	space, err := a.store.Space(ctx, app.SpaceGUID, store.Visibility{All: true})
	if err != nil {
		return nil, err
	}
	org, err := a.store.Organization(ctx, app.OrgGUID, store.Visibility{All: true})
	if err != nil {
		return nil, err
	}
	// TODO: list the app's route URLs in application_uris and uris once
	// routes exist.
	uris := []string{}
	return map[string]any{
		"cf_api":            a.externalURL,
		"limits":            map[string]any{"fds": instanceFileDescriptorLimit},
		"application_name":  app.Name,
		"application_uris":  uris,
		"name":              app.Name,
		"space_name":        space.Name,
		"space_id":          space.GUID,
		"organization_id":   org.GUID,
		"organization_name": org.Name,
		"uris":              uris,
		"users":             nil,
		"application_id":    app.GUID,
	}, nil
}
