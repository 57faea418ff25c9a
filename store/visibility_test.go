package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/ferrycf/ferry/store"
	"github.com/ferrycf/ferry/store/pgtest"
)

// TestSingleRowVisibility checks App, Process, ProcessWithApp and
// ProcessByType, which read one row through a prepared statement, against
// the visibility rules of the list queries. Each lookup runs eight times,
// because PostgreSQL may switch a prepared statement to a generic plan
// after five runs.
func TestSingleRowVisibility(t *testing.T) {
	st := pgtest.NewStore(t)
	ctx := context.Background()
	seed := appSeed{tenancySeed{t, st}}
	acme := seed.org("acme", nil)
	dev := seed.space(acme, "dev", nil)
	prod := seed.space(acme, "prod", nil)
	app := seed.app(dev, "web", nil)
	processes, err := store.AppProcesses(ctx, st.DB(), app.GUID)
	if err != nil || len(processes) != 1 {
		t.Fatalf("processes of a new app: %v, %v; want its web process", processes, err)
	}
	web := processes[0]

	developer, prodDeveloper, manager, orgUser, stranger := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	seed.role(developer, "space_developer", "", dev)
	seed.role(prodDeveloper, "space_developer", "", prod)
	seed.role(manager, "organization_manager", acme, "")
	seed.role(orgUser, "organization_user", acme, "")
	other := seed.org("other", nil)
	seed.role(stranger, "organization_manager", other, "")

	tests := []struct {
		name    string
		vis     store.Visibility
		visible bool
	}{
		{"admin", store.Visibility{All: true}, true},
		{"space developer of the space", store.Visibility{UserGUID: developer}, true},
		{"manager of the organization", store.Visibility{UserGUID: manager}, true},
		{"space developer of another space", store.Visibility{UserGUID: prodDeveloper}, false},
		{"organization user", store.Visibility{UserGUID: orgUser}, false},
		{"manager of another organization", store.Visibility{UserGUID: stranger}, false},
		{"user without roles", store.Visibility{UserGUID: uuid.NewString()}, false},
	}
	lookups := []struct {
		name string
		read func(store.Visibility) (string, error)
	}{
		{"App", func(vis store.Visibility) (string, error) {
			got, err := st.App(ctx, vis, app.GUID)
			return got.GUID, err
		}},
		{"Process", func(vis store.Visibility) (string, error) {
			got, err := st.Process(ctx, vis, web.GUID)
			return got.GUID, err
		}},
		{"ProcessWithApp", func(vis store.Visibility) (string, error) {
			p, gotApp, err := st.ProcessWithApp(ctx, vis, web.GUID)
			if err == nil && (p.AppGUID != app.GUID || gotApp.GUID != app.GUID || gotApp.Name != app.Name) {
				t.Errorf("ProcessWithApp = process of app %s, app %s %q; want app %s %q",
					p.AppGUID, gotApp.GUID, gotApp.Name, app.GUID, app.Name)
			}
			return p.GUID, err
		}},
		{"ProcessByType", func(vis store.Visibility) (string, error) {
			got, err := st.ProcessByType(ctx, vis, app.GUID, store.ProcessTypeWeb)
			return got.GUID, err
		}},
	}
	for _, lookup := range lookups {
		for _, tt := range tests {
			t.Run(lookup.name+"/"+tt.name, func(t *testing.T) {
				for run := range 8 {
					guid, err := lookup.read(tt.vis)
					switch {
					case tt.visible && err != nil:
						t.Fatalf("run %d: %v, want the row", run, err)
					case tt.visible && guid == "":
						t.Fatalf("run %d: empty guid, want the row", run)
					case !tt.visible && !errors.Is(err, store.ErrNotFound):
						t.Fatalf("run %d: guid %q, error %v; want ErrNotFound", run, guid, err)
					}
				}
			})
		}
	}
}
