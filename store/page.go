package store

import "strconv"

// Page selects one page of a list in a given order.
type Page struct {
	Number  int
	PerPage int
	// OrderBy is an API field name such as "name" or "created_at"; each list
	// method maps it to a column and rejects nothing, because the HTTP layer
	// validated it.
	OrderBy    string
	Descending bool
}

// limitOffset renders the LIMIT/OFFSET clause.
func (p Page) limitOffset() string {
	per := p.PerPage
	if per <= 0 {
		per = 50
	}
	n := p.Number
	if n <= 0 {
		n = 1
	}
	return " LIMIT " + strconv.Itoa(per) + " OFFSET " + strconv.Itoa((n-1)*per)
}

// orderBy renders the ORDER BY clause from the allowed field → column map,
// with the table's guid as a tiebreaker so pages never overlap. An unknown
// field falls back to created_at.
func (p Page) orderBy(columns map[string]string, guidColumn string) string {
	col, ok := columns[p.OrderBy]
	if !ok {
		col = columns["created_at"]
	}
	dir := " ASC"
	if p.Descending {
		dir = " DESC"
	}
	return " ORDER BY " + col + dir + ", " + guidColumn + dir
}
