package k8sbackend

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ferrycf/ferry/store"
)

// spacesPageSize is how many rows one query of DesiredSpaces reads.
const spacesPageSize = 1000

// DesiredSpaces reads the spaces among guids, their organizations and the
// quotas of both, with one query per 1000 spaces, organizations,
// organization quotas and space quotas. The reads are not
// one transaction, so a quota changed between them reaches the cluster in
// a later sync. An organization or quota that a space names but that is
// gone by the time it is read is an error rather than a missing space, so
// a namespace is never deleted for it.
func (d StoreDesiredApps) DesiredSpaces(ctx context.Context, guids []string) (map[string]SpaceSpec, error) {
	all := store.Visibility{All: true}
	spaces, err := allPages(func(p store.Page) ([]store.Space, int, error) {
		return d.Store.Spaces(ctx, store.SpaceFilter{GUIDs: guids}, p, all)
	})
	if err != nil || len(spaces) == 0 {
		return map[string]SpaceSpec{}, err
	}

	orgGUIDs, spaceQuotaGUIDs := map[string]bool{}, map[string]bool{}
	for _, s := range spaces {
		orgGUIDs[s.OrganizationGUID] = true
		if s.QuotaGUID != "" {
			spaceQuotaGUIDs[s.QuotaGUID] = true
		}
	}
	orgs, err := allPages(func(p store.Page) ([]store.Organization, int, error) {
		return d.Store.Organizations(ctx, store.OrganizationFilter{GUIDs: slices.Collect(maps.Keys(orgGUIDs))}, p, all)
	})
	if err != nil {
		return nil, err
	}
	orgQuotaGUIDs := map[string]bool{}
	orgQuotaOf := make(map[string]string, len(orgs))
	for _, o := range orgs {
		orgQuotaGUIDs[o.QuotaGUID] = true
		orgQuotaOf[o.GUID] = o.QuotaGUID
	}
	orgQuotas, err := allPages(func(p store.Page) ([]store.OrganizationQuota, int, error) {
		filter := store.OrganizationQuotaFilter{CommonFilter: store.CommonFilter{GUIDs: slices.Collect(maps.Keys(orgQuotaGUIDs))}}
		return d.Store.OrganizationQuotas(ctx, filter, p, all)
	})
	if err != nil {
		return nil, err
	}
	spaceQuotas := []store.SpaceQuota{}
	if len(spaceQuotaGUIDs) > 0 {
		spaceQuotas, err = allPages(func(p store.Page) ([]store.SpaceQuota, int, error) {
			filter := store.SpaceQuotaFilter{CommonFilter: store.CommonFilter{GUIDs: slices.Collect(maps.Keys(spaceQuotaGUIDs))}}
			return d.Store.SpaceQuotas(ctx, filter, p, all)
		})
		if err != nil {
			return nil, err
		}
	}
	return joinSpaces(spaces, orgQuotaOf, orgQuotas, spaceQuotas)
}

// joinSpaces matches each space with its organization's quota and its own.
func joinSpaces(spaces []store.Space, orgQuotaOf map[string]string, orgQuotas []store.OrganizationQuota,
	spaceQuotas []store.SpaceQuota) (map[string]SpaceSpec, error) {
	orgLimits := make(map[string]store.QuotaLimits, len(orgQuotas))
	for _, q := range orgQuotas {
		orgLimits[q.GUID] = q.Limits
	}
	spaceLimits := make(map[string]store.QuotaLimits, len(spaceQuotas))
	for _, q := range spaceQuotas {
		spaceLimits[q.GUID] = q.Limits
	}

	specs := make(map[string]SpaceSpec, len(spaces))
	for _, s := range spaces {
		quotaGUID, found := orgQuotaOf[s.OrganizationGUID]
		if !found {
			return nil, fmt.Errorf("organization %s of space %s: %w", s.OrganizationGUID, s.GUID, store.ErrNotFound)
		}
		spec := SpaceSpec{GUID: s.GUID, OrgGUID: s.OrganizationGUID}
		if spec.OrgQuota, found = orgLimits[quotaGUID]; !found {
			return nil, fmt.Errorf("quota %s of organization %s: %w", quotaGUID, s.OrganizationGUID, store.ErrNotFound)
		}
		if s.QuotaGUID != "" {
			if spec.SpaceQuota, found = spaceLimits[s.QuotaGUID]; !found {
				return nil, fmt.Errorf("quota %s of space %s: %w", s.QuotaGUID, s.GUID, store.ErrNotFound)
			}
		}
		specs[s.GUID] = spec
	}
	return specs, nil
}

// allPages reads every page of a store list, spacesPageSize rows at a
// time, in the store's default order.
func allPages[T any](list func(store.Page) ([]T, int, error)) ([]T, error) {
	var items []T
	for number := 1; ; number++ {
		page, total, err := list(store.Page{Number: number, PerPage: spacesPageSize})
		if err != nil {
			return nil, err
		}
		items = append(items, page...)
		if len(page) == 0 || number*spacesPageSize >= total {
			return items, nil
		}
	}
}
