package cfapi

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/ferrycf/ferry/store"
)

// link is a CF link object.
type link struct {
	Href   string `json:"href"`
	Method string `json:"method,omitempty"`
}

type paginationJSON struct {
	TotalResults int   `json:"total_results"`
	TotalPages   int   `json:"total_pages"`
	First        link  `json:"first"`
	Last         link  `json:"last"`
	Next         *link `json:"next"`
	Previous     *link `json:"previous"`
}

// listJSON is a v3 list response. Resources must never be null: the cf CLI
// fails to decode a list without a resources array.
type listJSON struct {
	Pagination paginationJSON `json:"pagination"`
	Resources  any            `json:"resources"`
	Included   map[string]any `json:"included,omitempty"`
}

// paginate builds the pagination object with absolute hrefs that keep the
// request's other query parameters, since the cf CLI follows next.href as is.
func (a *API) paginate(r *http.Request, page store.Page, total int) paginationJSON {
	pages := (total + page.PerPage - 1) / page.PerPage
	if pages == 0 {
		pages = 1
	}
	href := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		q.Set("per_page", strconv.Itoa(page.PerPage))
		u := url.URL{Path: r.URL.Path, RawQuery: q.Encode()}
		return a.externalURL + u.String()
	}

	p := paginationJSON{
		TotalResults: total,
		TotalPages:   pages,
		First:        link{Href: href(1)},
		Last:         link{Href: href(pages)},
	}
	if page.Number < pages {
		p.Next = &link{Href: href(page.Number + 1)}
	}
	if page.Number > 1 {
		prev := min(page.Number-1, pages)
		p.Previous = &link{Href: href(prev)}
	}
	return p
}

// list builds a list response; resources should be a non-nil slice.
func (a *API) list(r *http.Request, page store.Page, total int, resources any) listJSON {
	return listJSON{Pagination: a.paginate(r, page, total), Resources: resources}
}
