package cfapi

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/store"
)

func cmpFilter(op, attr, value string) *store.UAAUserFilter {
	return &store.UAAUserFilter{Operator: op, Attribute: attr, Value: value}
}

func logical(op string, left, right *store.UAAUserFilter) *store.UAAUserFilter {
	return &store.UAAUserFilter{Operator: op, Left: left, Right: right}
}

func TestUAAFilterParse(t *testing.T) {
	tests := []struct {
		filter string
		want   *store.UAAUserFilter
	}{
		{`userName eq "bob"`, cmpFilter("eq", "username", "bob")},
		{`userName eq "bob" and origin eq "uaa"`,
			logical("and", cmpFilter("eq", "username", "bob"), cmpFilter("eq", "origin", "uaa"))},
		{`ID Eq "x" OR username EQ "y"`, logical("or", cmpFilter("eq", "id", "x"), cmpFilter("eq", "username", "y"))},
		{`userName eq "a" or userName eq "b" and origin eq "c"`,
			logical("or", cmpFilter("eq", "username", "a"),
				logical("and", cmpFilter("eq", "username", "b"), cmpFilter("eq", "origin", "c")))},
		{`(userName eq "a" or userName eq "b") and origin eq "c"`,
			logical("and", logical("or", cmpFilter("eq", "username", "a"), cmpFilter("eq", "username", "b")),
				cmpFilter("eq", "origin", "c"))},
		{`userName eq "say \"hi\" \\ bye"`, cmpFilter("eq", "username", `say "hi" \ bye`)},
		{`userName eq "two words"`, cmpFilter("eq", "username", "two words")},
		{`name.givenName sw "Jo" and emails.value co "@example"`,
			logical("and", cmpFilter("sw", "givenname", "Jo"), cmpFilter("co", "email", "@example"))},
		{`origin pr`, &store.UAAUserFilter{Operator: "pr", Attribute: "origin"}},
		{`  userName   eq   "spaced"  `, cmpFilter("eq", "username", "spaced")},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			got, err := parseSCIMFilter(tt.filter)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("filter (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUAAFilterParseErrors(t *testing.T) {
	tests := map[string]string{
		``:                       "the filter ends where a comparison should follow",
		`userName`:               `expected an operator after "userName"`,
		`userName eq`:            `expected a quoted value after "userName" eq`,
		`userName eq bob`:        `expected a quoted value after "userName" eq`,
		`userName ne "bob"`:      `unsupported operator "ne"; use eq, co, sw or pr`,
		`shoeSize eq "9"`:        `unsupported attribute "shoeSize"; use one of id, userName, origin, email, name.givenName, name.familyName`,
		`userName eq "bob`:       "unterminated string starting at position 13",
		`userName eq "bob\`:      "unterminated string starting at position 13",
		`(userName eq "bob"`:     "missing closing parenthesis",
		`userName eq "bob")`:     `unexpected ")"`,
		`userName eq "a" and`:    "the filter ends where a comparison should follow",
		`userName eq "a" "b"`:    `unexpected string "b"`,
		`"userName" eq "a"`:      `expected an attribute name, found string "userName"`,
		`userName eq "a" nand x`: `unexpected "nand"`,
	}
	for filter, want := range tests {
		t.Run(filter, func(t *testing.T) {
			_, err := parseSCIMFilter(filter)
			if err == nil {
				t.Fatal("parse succeeded, want an error")
			}
			if err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
		})
	}
}

func TestUAAFilterLimits(t *testing.T) {
	long := `userName eq "` + string(make([]byte, maxFilterLength)) + `"`
	if _, err := parseSCIMFilter(long); err == nil {
		t.Error("an overlong filter parsed")
	}

	many := `userName eq "a"`
	for range maxFilterComparisons {
		many += ` or userName eq "a"`
	}
	if _, err := parseSCIMFilter(many); err == nil {
		t.Errorf("a filter with %d comparisons parsed", maxFilterComparisons+1)
	}
}
