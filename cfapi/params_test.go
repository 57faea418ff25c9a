package cfapi

import (
	"slices"
	"testing"
)

func TestSplitListDecodesEscapedCommas(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a,b", []string{"a", "b"}},
		{"a%2Cb,c", []string{"a,b", "c"}},
		{"", []string{""}},
		{"bad%zz", []string{"bad%zz"}},
	} {
		if got := splitList(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("splitList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJSONTypeNamesUseArticles(t *testing.T) {
	for kind, want := range map[string]string{"map": "an object", "slice": "an array", "bool": "a boolean", "int64": "a number"} {
		if got := jsonTypeName(kind); got != want {
			t.Errorf("jsonTypeName(%q) = %q, want %q", kind, got, want)
		}
	}
}
