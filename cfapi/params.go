package cfapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// maxBodyBytes bounds JSON request bodies; no v3 JSON body Ferry accepts
// comes near it.
const maxBodyBytes = 1 << 20

// Pagination limits Cloud Controller enforces on every list endpoint.
const (
	defaultPerPage = 50
	maxPerPage     = 5000
)

// listSpec declares what a list endpoint accepts besides page and per_page:
// its filters, the fields it can be ordered by (the first is the default),
// and its include values.
type listSpec struct {
	filters  []string
	orderBy  []string
	includes []string
	// extra names query parameters that are neither filters nor includes,
	// such as "embed".
	extra []string
}

// listQuery is a parsed, validated list request.
type listQuery struct {
	page    store.Page
	values  url.Values
	include []string
}

// parseListQuery validates r's query against spec. Unknown parameters are a
// 400 that lists the valid ones, as Cloud Controller does.
func parseListQuery(r *http.Request, spec listSpec) (*listQuery, error) {
	values := r.URL.Query()

	valid := []string{"page", "per_page"}
	if len(spec.orderBy) > 0 {
		valid = append(valid, "order_by")
	}
	if len(spec.includes) > 0 {
		valid = append(valid, "include")
	}
	valid = append(valid, spec.filters...)
	valid = append(valid, spec.extra...)
	if err := rejectUnknownParams(values, valid); err != nil {
		return nil, err
	}

	q := &listQuery{values: values, page: store.Page{Number: 1, PerPage: defaultPerPage}}
	if v := values.Get("page"); values.Has("page") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, apierr.BadQueryParameter("Page must be greater than 0")
		}
		q.page.Number = n
	}
	if v := values.Get("per_page"); values.Has("per_page") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPerPage {
			return nil, apierr.BadQueryParameter(fmt.Sprintf("Per page must be between 1 and %d", maxPerPage))
		}
		q.page.PerPage = n
	}

	if len(spec.orderBy) > 0 {
		q.page.OrderBy = spec.orderBy[0]
		if v := values.Get("order_by"); values.Has("order_by") {
			field, desc := strings.CutPrefix(v, "-")
			if !desc {
				field = strings.TrimPrefix(field, "+")
			}
			if !slices.Contains(spec.orderBy, field) {
				return nil, apierr.BadQueryParameter("Order by can only be: " + quoteList(spec.orderBy))
			}
			q.page.OrderBy, q.page.Descending = field, desc
		}
	}

	if values.Has("include") {
		for _, inc := range splitList(values.Get("include")) {
			if !slices.Contains(spec.includes, inc) {
				return nil, apierr.BadQueryParameter("Invalid included resource: '" + inc + "'. Valid included resources are: " + quoteList(spec.includes))
			}
			q.include = append(q.include, inc)
		}
	}
	return q, nil
}

// filter returns a filter's comma-separated values. A filter that is absent
// returns nil; one given with an empty value returns [""], because the cf CLI
// sends "hosts=" to mean "equals the empty string".
func (q *listQuery) filter(name string) []string {
	if !q.values.Has(name) {
		return nil
	}
	return splitList(q.values.Get(name))
}

// has reports whether the filter was given at all.
func (q *listQuery) has(name string) bool { return q.values.Has(name) }

// includes reports whether include=name was asked for.
func (q *listQuery) includes(name string) bool { return slices.Contains(q.include, name) }

// rejectUnknownParams fails when the query has a key outside valid.
func rejectUnknownParams(values url.Values, valid []string) error {
	var unknown []string
	for key := range values {
		if !slices.Contains(valid, key) {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return apierr.BadQueryParameter("Unknown query parameter(s): " + quoteList(unknown) + ". Valid parameters are: " + quoteList(valid))
}

// noQuery is for endpoints that take no query parameters.
func noQuery(r *http.Request) error {
	return rejectUnknownParams(r.URL.Query(), nil)
}

// splitList splits a comma-separated filter value and then decodes each
// part, as Cloud Controller does: the cf CLI escapes a comma inside a name as
// %2C, so it survives the split and is decoded afterwards.
func splitList(v string) []string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if decoded, err := url.QueryUnescape(p); err == nil {
			p = decoded
		}
		parts[i] = p
	}
	return parts
}

func quoteList(items []string) string {
	quoted := make([]string, len(items))
	for i, it := range items {
		quoted[i] = "'" + it + "'"
	}
	return strings.Join(quoted, ", ")
}

// decodeBody strictly decodes a JSON body into v. Malformed JSON is a 400
// CF-MessageParseError; unknown fields and wrongly typed values are a 422 that
// names the field.
func decodeBody(r *http.Request, v any) error {
	return decodeBodyLimit(r, v, maxBodyBytes)
}

// decodeBodyLimit is decodeBody for bodies of up to limit bytes.
func decodeBodyLimit(r *http.Request, v any, limit int64) error {
	body := http.MaxBytesReader(nil, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()

	err := dec.Decode(v)
	if err == nil {
		if dec.More() {
			return apierr.MessageParseError("unexpected data after the JSON object")
		}
		return nil
	}

	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return apierr.MessageParseError("the request body is empty; send a JSON object")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.MessageParseError("the body is not valid JSON")
	case errors.As(err, &maxErr):
		return apierr.MessageParseError(fmt.Sprintf("the body exceeds %d bytes", limit))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return apierr.MessageParseError("the body must be a JSON object")
		}
		return apierr.UnprocessableEntity(fmt.Sprintf("%s must be %s", fieldLabel(typeErr.Field), jsonTypeName(typeErr.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apierr.UnprocessableEntity("Unknown field(s): '" + field + "'")
	default:
		return apierr.MessageParseError("the body is not valid JSON")
	}
}

// fieldLabel turns a JSON path such as "relationships.organization" into the
// capitalised form Cloud Controller uses in messages.
func fieldLabel(path string) string {
	if path == "" {
		return path
	}
	return strings.ToUpper(path[:1]) + path[1:]
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	default:
		return "a number"
	}
}
