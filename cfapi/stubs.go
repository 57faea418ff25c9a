package cfapi

import "github.com/ferrycf/ferry/jobs"

// Placeholders for the route groups and job handlers other files provide.
// Each file that implements one of these deletes its line here.

func (a *API) uaaRoutes() []route          { return nil }
func (a *API) organizationRoutes() []route { return nil }
func (a *API) spaceRoutes() []route        { return nil }
func (a *API) userRoutes() []route         { return nil }
func (a *API) roleRoutes() []route         { return nil }
func (a *API) quotaRoutes() []route        { return nil }
func (a *API) featureFlagRoutes() []route  { return nil }
func (a *API) jobRoutes() []route          { return nil }
func (a *API) auditEventRoutes() []route   { return nil }

func (a *API) organizationJobs() map[string]jobs.Func { return nil }
func (a *API) spaceJobs() map[string]jobs.Func        { return nil }
func (a *API) roleJobs() map[string]jobs.Func         { return nil }
func (a *API) userJobs() map[string]jobs.Func         { return nil }
