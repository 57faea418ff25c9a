package cfapi

// Placeholders for the route groups and job handlers other files provide.
// Each file that implements a group deletes its line here.

func (a *API) uaaRoutes() []route          { return nil }
func (a *API) organizationRoutes() []route { return nil }
func (a *API) spaceRoutes() []route        { return nil }
func (a *API) userRoutes() []route         { return nil }
func (a *API) roleRoutes() []route         { return nil }
func (a *API) quotaRoutes() []route        { return nil }
func (a *API) featureFlagRoutes() []route  { return nil }
func (a *API) jobRoutes() []route          { return nil }
func (a *API) auditEventRoutes() []route   { return nil }

func (a *API) registerJobs() {}
