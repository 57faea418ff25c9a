package cfapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// spaceSSH is the ssh feature object of a space.
func spaceSSH(enabled bool) map[string]any {
	return map[string]any{"name": "ssh", "description": "Enable SSHing into apps in the space.", "enabled": enabled}
}

func TestSpaceFeaturesGet(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	base := "/v3/spaces/" + f.spaceGUID + "/features"

	// A new space allows SSH, as in Cloud Controller.
	list := env.do(http.MethodGet, base, f.auditor, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(map[string]any{"resources": []any{spaceSSH(true)}}, list); diff != "" {
		t.Errorf("features (-want +got):\n%s", diff)
	}
	for _, token := range []string{f.admin, f.globalAuditor, f.readOnlyAdmin, f.developer, f.supporter, f.spaceManager, f.orgManager} {
		one := env.do(http.MethodGet, base+"/ssh", token, nil).expect(http.StatusOK).object()
		if diff := cmp.Diff(spaceSSH(true), one); diff != "" {
			t.Errorf("ssh feature (-want +got):\n%s", diff)
		}
	}

	assertTenancyError(t, env.do(http.MethodGet, base+"/telnet", f.admin, nil), http.StatusNotFound, 10010, "Feature not found")
	for _, token := range []string{f.orgUser, f.stranger} {
		assertTenancyError(t, env.do(http.MethodGet, base, token, nil), http.StatusNotFound, 10010, "Space not found")
		assertTenancyError(t, env.do(http.MethodGet, base+"/ssh", token, nil), http.StatusNotFound, 10010, "Space not found")
	}
	assertTenancyError(t, env.do(http.MethodGet, "/v3/spaces/no-such-space/features/ssh", f.admin, nil), http.StatusNotFound, 10010, "Space not found")
	env.do(http.MethodGet, base+"?names=ssh", f.admin, nil).expect(http.StatusBadRequest)
}

func TestSpaceFeatureUpdate(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	path := "/v3/spaces/" + f.spaceGUID + "/features/ssh"

	got := env.do(http.MethodPatch, path, f.spaceManager, map[string]any{"enabled": false}).expect(http.StatusOK).object()
	if diff := cmp.Diff(spaceSSH(false), got); diff != "" {
		t.Errorf("after disallow (-want +got):\n%s", diff)
	}
	got = env.do(http.MethodGet, path, f.developer, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(spaceSSH(false), got); diff != "" {
		t.Errorf("read after disallow (-want +got):\n%s", diff)
	}
	list := env.do(http.MethodGet, "/v3/spaces/"+f.spaceGUID+"/features", f.developer, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(map[string]any{"resources": []any{spaceSSH(false)}}, list); diff != "" {
		t.Errorf("features after disallow (-want +got):\n%s", diff)
	}

	got = env.do(http.MethodPatch, path, f.orgManager, map[string]any{"enabled": true}).expect(http.StatusOK).object()
	if diff := cmp.Diff(spaceSSH(true), got); diff != "" {
		t.Errorf("after allow (-want +got):\n%s", diff)
	}
	env.do(http.MethodPatch, path, f.admin, map[string]any{"enabled": false}).expect(http.StatusOK)

	// Apps still report SSH as disabled, because Ferry offers none.
	guid, _ := f.app(appBody("web", f.spaceGUID))["guid"].(string)
	env.do(http.MethodPatch, path, f.admin, map[string]any{"enabled": true}).expect(http.StatusOK)
	sshEnabled := env.do(http.MethodGet, "/v3/apps/"+guid+"/ssh_enabled", f.developer, nil).expect(http.StatusOK).object()
	if sshEnabled["enabled"] != false {
		t.Errorf("app ssh_enabled = %v, want false", sshEnabled)
	}

	var actors []string
	for _, ev := range f.events(f.spaceGUID) {
		if ev.Type != "audit.space.update" {
			continue
		}
		actors = append(actors, ev.ActorName)
		if ev.TargetType != "space" || ev.TargetName != "dev" || ev.OrgGUID != f.orgGUID || ev.SpaceGUID != f.spaceGUID {
			t.Errorf("audit event = %+v", ev)
		}
		if _, ok := ev.Data["request"].(map[string]any)["allow_ssh"].(bool); !ok {
			t.Errorf("audit event data = %v, want request.allow_ssh", ev.Data)
		}
	}
	if diff := cmp.Diff([]string{"space-manager", "org-manager", "admin", "admin"}, actors); diff != "" {
		t.Errorf("actors of audit.space.update events (-want +got):\n%s", diff)
	}
}

func TestSpaceFeatureUpdatePermissions(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	path := "/v3/spaces/" + f.spaceGUID + "/features/ssh"
	body := map[string]any{"enabled": false}

	for name, token := range map[string]string{
		"space developer": f.developer, "space supporter": f.supporter, "space auditor": f.auditor,
		"global auditor": f.globalAuditor, "read-only admin": f.readOnlyAdmin,
	} {
		resp := env.do(http.MethodPatch, path, token, body)
		if resp.Status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, resp.Status)
		}
	}
	for name, token := range map[string]string{"org user": f.orgUser, "stranger": f.stranger} {
		resp := env.do(http.MethodPatch, path, token, body)
		if resp.Status != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", name, resp.Status)
		}
	}
	got := env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(spaceSSH(true), got); diff != "" {
		t.Errorf("after rejected updates (-want +got):\n%s", diff)
	}

	ctx := context.Background()
	if _, err := env.store.DB().ExecContext(ctx, `UPDATE organizations SET suspended = true WHERE guid = $1`, f.orgGUID); err != nil {
		t.Fatal(err)
	}
	assertTenancyError(t, env.do(http.MethodPatch, path, f.spaceManager, body), http.StatusForbidden, 10017, "The organization is suspended")
	assertTenancyError(t, env.do(http.MethodPatch, path, f.orgManager, body), http.StatusForbidden, 10017, "The organization is suspended")
	env.do(http.MethodPatch, path, f.admin, body).expect(http.StatusOK)
}

func TestSpaceFeatureUpdateRejectsBadInput(t *testing.T) {
	f := newAppFixture(t)
	env := f.env
	path := "/v3/spaces/" + f.spaceGUID + "/features/ssh"

	for _, tc := range []struct {
		name   string
		body   string
		detail string
	}{
		{"string", `{"enabled": "yes"}`, "Enabled must be a boolean"},
		{"missing", `{}`, "Enabled must be a boolean"},
		{"null", `{"enabled": null}`, "Enabled must be a boolean"},
		{"unknown field", `{"enabled": false, "allowed": true}`, "Unknown field(s): 'allowed'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertTenancyError(t, env.do(http.MethodPatch, path, f.spaceManager, tc.body), http.StatusUnprocessableEntity, 10008, tc.detail)
		})
	}
	env.do(http.MethodPatch, path, f.spaceManager, `{"enabled":`).expect(http.StatusBadRequest)

	assertTenancyError(t, env.do(http.MethodPatch, "/v3/spaces/"+f.spaceGUID+"/features/telnet", f.spaceManager, map[string]any{"enabled": false}),
		http.StatusNotFound, 10010, "Feature not found")
	assertTenancyError(t, env.do(http.MethodPatch, "/v3/spaces/grapefruit/features/ssh", f.admin, map[string]any{"enabled": false}),
		http.StatusNotFound, 10010, "Space not found")

	got := env.do(http.MethodGet, path, f.admin, nil).expect(http.StatusOK).object()
	if diff := cmp.Diff(spaceSSH(true), got); diff != "" {
		t.Errorf("after rejected updates (-want +got):\n%s", diff)
	}
}
