package cfapi

import (
	"net/http"
)

// Versions Ferry advertises. The v3 version stays below 3.211.0 until
// GET /v3/processes?embed=process_instances is served, because cf CLI v9
// switches `cf apps` to that request at 3.211.0; it is at least 3.183.0,
// which cf CLI v8.9.1 requires for `create-route`.
const (
	v3APIVersion  = "3.200.0"
	v2APIVersion  = "2.250.0"
	minCLIVersion = "8.0.0"
)

func (a *API) rootRoutes() []route {
	return []route{
		{method: http.MethodGet, path: "/", handler: a.root, public: true},
		{method: http.MethodGet, path: "/v3", handler: a.v3Root, public: true},
		{method: http.MethodGet, path: "/v3/", handler: a.v3Root, public: true},
		{method: http.MethodGet, path: "/v3/info", handler: a.v3Info, public: true},
		{method: http.MethodGet, path: "/v2/info", handler: a.v2Info, public: true},
	}
}

type rootLinks struct {
	Self              link       `json:"self"`
	CloudControllerV2 versioned  `json:"cloud_controller_v2"`
	CloudControllerV3 versioned  `json:"cloud_controller_v3"`
	NetworkPolicyV0   link       `json:"network_policy_v0"`
	NetworkPolicyV1   link       `json:"network_policy_v1"`
	Login             link       `json:"login"`
	UAA               link       `json:"uaa"`
	Credhub           *link      `json:"credhub"`
	Routing           link       `json:"routing"`
	Logging           link       `json:"logging"`
	LogCache          link       `json:"log_cache"`
	LogStream         link       `json:"log_stream"`
	AppSSH            appSSHLink `json:"app_ssh"`
}

type versioned struct {
	Href string `json:"href"`
	Meta struct {
		Version string `json:"version"`
	} `json:"meta"`
}

type appSSHLink struct {
	Href string `json:"href"`
	Meta struct {
		HostKeyFingerprint string `json:"host_key_fingerprint"`
		OAuthClient        string `json:"oauth_client"`
	} `json:"meta"`
}

type rootJSON struct {
	Links   rootLinks `json:"links"`
	CFOnK8s bool      `json:"cf_on_k8s"`
}

// root is the document `cf api` reads. Login and UAA are served by this
// same server, so their links point back at it. The log cache link is the
// configured log-cache URL, which defaults to this server as well. cf_on_k8s
// stays false: true would make the cf CLI authenticate with kubeconfig users.
func (a *API) root(r *http.Request) (*response, error) {
	var doc rootJSON
	doc.Links.Self = link{Href: a.url()}
	doc.Links.CloudControllerV2.Href = a.url("/v2")
	doc.Links.CloudControllerV2.Meta.Version = v2APIVersion
	doc.Links.CloudControllerV3.Href = a.url("/v3")
	doc.Links.CloudControllerV3.Meta.Version = v3APIVersion
	doc.Links.NetworkPolicyV0 = link{Href: a.url("/networking/v0/external")}
	doc.Links.NetworkPolicyV1 = link{Href: a.url("/networking/v1/external")}
	doc.Links.Login = link{Href: a.url()}
	doc.Links.UAA = link{Href: a.url()}
	doc.Links.Routing = link{Href: a.url("/routing")}
	doc.Links.Logging = link{Href: a.url("/logging")}
	doc.Links.LogCache = link{Href: a.logCacheLink()}
	doc.Links.LogStream = link{Href: a.url("/log-stream")}
	doc.Links.AppSSH.Href = a.url("/ssh")
	doc.Links.AppSSH.Meta.OAuthClient = "ssh-proxy"
	return ok(doc), nil
}

// logCacheLink returns the base URL of the log-cache read API.
func (a *API) logCacheLink() string {
	if a.logCacheURL != "" {
		return a.logCacheURL
	}
	return a.url()
}

// v3Root lists the v3 resource links; cf CLI v6 builds every v3 URL from it.
func (a *API) v3Root(r *http.Request) (*response, error) {
	resources := []string{
		"app_usage_events", "apps", "audit_events", "buildpacks", "builds", "deployments", "domains",
		"droplets", "environment_variable_groups", "feature_flags", "info", "isolation_segments",
		"organization_quotas", "organizations", "packages", "processes", "resource_matches", "roles",
		"routes", "security_groups", "service_brokers", "service_instances", "service_offerings",
		"service_plans", "service_credential_bindings", "service_route_bindings", "service_usage_events",
		"sidecars", "space_quotas", "spaces", "stacks", "tasks", "users",
	}
	links := map[string]link{"self": {Href: a.url("/v3")}}
	for _, res := range resources {
		links[res] = link{Href: a.url("/v3/", res)}
	}
	return ok(map[string]any{"links": links}), nil
}

func (a *API) v3Info(r *http.Request) (*response, error) {
	return ok(map[string]any{
		"build":          "",
		"cli_version":    map[string]any{"minimum": minCLIVersion, "recommended": minCLIVersion},
		"custom":         map[string]any{},
		"description":    "Ferry: Cloud Foundry apps on Kubernetes",
		"name":           "ferry",
		"version":        1,
		"osbapi_version": "2.15",
		"rate_limits":    map[string]any{"enabled": false, "general_limit": 0, "reset_interval_in_minutes": 0},
		"links": map[string]any{
			"self":    link{Href: a.url("/v3/info")},
			"support": link{Href: ""},
		},
	}), nil
}

// v2Info is what cf CLI v6 reads before every command: the UAA and login
// endpoints, and the API version it shows.
func (a *API) v2Info(r *http.Request) (*response, error) {
	return ok(map[string]any{
		"name":                         "ferry",
		"build":                        "",
		"support":                      "",
		"version":                      1,
		"description":                  "Ferry: Cloud Foundry apps on Kubernetes",
		"authorization_endpoint":       a.url(),
		"token_endpoint":               a.url(),
		"min_cli_version":              nil,
		"min_recommended_cli_version":  nil,
		"api_version":                  v2APIVersion,
		"osbapi_version":               "2.15",
		"app_ssh_endpoint":             "",
		"app_ssh_host_key_fingerprint": "",
		"app_ssh_oauth_client":         "ssh-proxy",
		"doppler_logging_endpoint":     "",
		"routing_endpoint":             a.url("/routing"),
	}), nil
}
