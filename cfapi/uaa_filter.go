package cfapi

import (
	"fmt"
	"strings"

	"github.com/ferrycf/ferry/store"
)

// Limits on SCIM filters, so one request cannot build an arbitrarily large
// query. cf create-user sends two comparisons.
const (
	maxFilterLength      = 2048
	maxFilterComparisons = 50
)

// scimFilterAttributes maps the SCIM attribute names Ferry filters on, in
// lower case because SCIM attribute names are case-insensitive, to the
// store's attribute names.
var scimFilterAttributes = map[string]string{
	"id":              "id",
	"username":        "username",
	"origin":          "origin",
	"email":           "email",
	"emails":          "email",
	"emails.value":    "email",
	"givenname":       "givenname",
	"name.givenname":  "givenname",
	"familyname":      "familyname",
	"name.familyname": "familyname",
}

// parseSCIMFilter parses a SCIM filter such as
// `userName eq "bob" and origin eq "uaa"`. It supports the operators eq,
// co, sw and pr, joined by "and" (binding tighter) and "or", and
// parentheses. Attribute names and operators are case-insensitive.
func parseSCIMFilter(filter string) (*store.UAAUserFilter, error) {
	if len(filter) > maxFilterLength {
		return nil, fmt.Errorf("the filter is longer than %d characters", maxFilterLength)
	}
	tokens, err := tokenizeSCIMFilter(filter)
	if err != nil {
		return nil, err
	}
	p := &scimFilterParser{tokens: tokens}
	f, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.tokens) {
		return nil, fmt.Errorf("unexpected %s", p.tokens[p.pos])
	}
	return f, nil
}

// scimToken is one lexical token of a filter. quoted marks string literals,
// whose text is already unescaped.
type scimToken struct {
	text   string
	quoted bool
}

func (t scimToken) String() string {
	if t.quoted {
		return fmt.Sprintf("string %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

func tokenizeSCIMFilter(s string) ([]scimToken, error) {
	var tokens []scimToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			tokens = append(tokens, scimToken{text: string(c)})
			i++
		case c == '"':
			text, next, err := scanSCIMString(s, i)
			if err != nil {
				return nil, err
			}
			tokens = append(tokens, scimToken{text: text, quoted: true})
			i = next
		default:
			start := i
			for i < len(s) && !strings.ContainsRune(" \t\n\r()\"", rune(s[i])) {
				i++
			}
			tokens = append(tokens, scimToken{text: s[start:i]})
		}
	}
	return tokens, nil
}

// scanSCIMString reads the JSON-style string literal starting at s[start]
// and returns its unescaped text and the index after its closing quote.
func scanSCIMString(s string, start int) (string, int, error) {
	var b strings.Builder
	for i := start + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("unterminated string starting at position %d", start+1)
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), i + 1, nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated string starting at position %d", start+1)
}

type scimFilterParser struct {
	tokens      []scimToken
	pos         int
	comparisons int
}

func (p *scimFilterParser) peekKeyword(word string) bool {
	return p.pos < len(p.tokens) && !p.tokens[p.pos].quoted && strings.EqualFold(p.tokens[p.pos].text, word)
}

func (p *scimFilterParser) parseOr() (*store.UAAUserFilter, error) {
	left, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.peekKeyword("or") {
		p.pos++
		right, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		left = &store.UAAUserFilter{Operator: "or", Left: left, Right: right}
	}
	return left, nil
}

func (p *scimFilterParser) parseAnd() (*store.UAAUserFilter, error) {
	left, err := p.parseFactor()
	if err != nil {
		return nil, err
	}
	for p.peekKeyword("and") {
		p.pos++
		right, err := p.parseFactor()
		if err != nil {
			return nil, err
		}
		left = &store.UAAUserFilter{Operator: "and", Left: left, Right: right}
	}
	return left, nil
}

func (p *scimFilterParser) parseFactor() (*store.UAAUserFilter, error) {
	if p.pos >= len(p.tokens) {
		return nil, fmt.Errorf("the filter ends where a comparison should follow")
	}
	if p.peekKeyword("(") {
		p.pos++
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if !p.peekKeyword(")") {
			return nil, fmt.Errorf("missing closing parenthesis")
		}
		p.pos++
		return inner, nil
	}
	return p.parseComparison()
}

func (p *scimFilterParser) parseComparison() (*store.UAAUserFilter, error) {
	p.comparisons++
	if p.comparisons > maxFilterComparisons {
		return nil, fmt.Errorf("the filter has more than %d comparisons", maxFilterComparisons)
	}

	attrToken := p.tokens[p.pos]
	if attrToken.quoted {
		return nil, fmt.Errorf("expected an attribute name, found %s", attrToken)
	}
	attr, ok := scimFilterAttributes[strings.ToLower(attrToken.text)]
	if !ok {
		return nil, fmt.Errorf("unsupported attribute %q; use one of %s", attrToken.text,
			strings.Join(store.UAAUserFilterAttributes(), ", "))
	}
	p.pos++

	if p.pos >= len(p.tokens) || p.tokens[p.pos].quoted {
		return nil, fmt.Errorf("expected an operator after %q", attrToken.text)
	}
	op := strings.ToLower(p.tokens[p.pos].text)
	p.pos++
	switch op {
	case "pr":
		return &store.UAAUserFilter{Operator: op, Attribute: attr}, nil
	case "eq", "co", "sw":
	default:
		return nil, fmt.Errorf("unsupported operator %q; use eq, co, sw or pr", op)
	}

	if p.pos >= len(p.tokens) || !p.tokens[p.pos].quoted {
		return nil, fmt.Errorf("expected a quoted value after %q %s", attrToken.text, op)
	}
	value := p.tokens[p.pos].text
	p.pos++
	return &store.UAAUserFilter{Operator: op, Attribute: attr, Value: value}, nil
}
