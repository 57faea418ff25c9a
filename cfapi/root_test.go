package cfapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRootDocumentLinks(t *testing.T) {
	env := newTestEnv(t)

	var doc struct {
		Links struct {
			CloudControllerV3 struct {
				Href string `json:"href"`
				Meta struct {
					Version string `json:"version"`
				} `json:"meta"`
			} `json:"cloud_controller_v3"`
			Login    struct{ Href string } `json:"login"`
			UAA      struct{ Href string } `json:"uaa"`
			LogCache struct{ Href string } `json:"log_cache"`
		} `json:"links"`
		CFOnK8s bool `json:"cf_on_k8s"`
	}
	env.do(http.MethodGet, "/", "", nil).expect(http.StatusOK).decode(&doc)

	if doc.Links.CloudControllerV3.Meta.Version != "3.200.0" {
		t.Errorf("v3 version = %q, want 3.200.0", doc.Links.CloudControllerV3.Meta.Version)
	}
	if doc.Links.CloudControllerV3.Href != env.server.URL+"/v3" {
		t.Errorf("v3 href = %q", doc.Links.CloudControllerV3.Href)
	}
	for name, href := range map[string]string{"login": doc.Links.Login.Href, "uaa": doc.Links.UAA.Href, "log_cache": doc.Links.LogCache.Href} {
		if href != env.server.URL {
			t.Errorf("%s href = %q, want %q", name, href, env.server.URL)
		}
	}
	if doc.CFOnK8s {
		t.Error("cf_on_k8s = true, want false")
	}
}

func TestUnknownPathIsCFNotFound(t *testing.T) {
	env := newTestEnv(t)

	resp := env.do(http.MethodGet, "/v3/nonsense", env.adminToken(), nil).expect(http.StatusNotFound)
	code, title, detail := resp.cfError()
	if code != 10000 || title != "CF-NotFound" || detail != "Unknown request" {
		t.Errorf("error = %d %s %q", code, title, detail)
	}
}

func TestV2ErrorsUseV2Format(t *testing.T) {
	env := newTestEnv(t)

	body := env.do(http.MethodGet, "/v2/nonsense", "", nil).expect(http.StatusNotFound).object()
	if body["error_code"] != "CF-NotFound" || body["description"] != "Unknown request" {
		t.Errorf("v2 error body = %v", body)
	}
}

func TestRootLogCacheLinkFromConfig(t *testing.T) {
	a := &API{externalURL: "https://api.example.com", logCacheURL: "https://log-cache.example.com"}

	resp, err := a.root(httptest.NewRequest(http.MethodGet, "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.body.(rootJSON).Links.LogCache.Href; got != "https://log-cache.example.com" {
		t.Errorf("log_cache href = %q, want https://log-cache.example.com", got)
	}
}
