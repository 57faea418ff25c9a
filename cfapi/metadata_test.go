package cfapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

func TestMetadataKeyProblem(t *testing.T) {
	tests := []struct {
		key  string
		want string
	}{
		{"env", ""},
		{"a", ""},
		{"a.b_c-d", ""},
		{"Env9", ""},
		{"example.com/env", ""},
		{"sub.example-1.com/x", ""},
		{strings.Repeat("k", 63), ""},
		{strings.Repeat("p", 253) + "/k", ""},
		{"", "a key must not be empty"},
		{"a/b/c", "a key has at most one '/', between its prefix and its name"},
		{"example.com/", "the name after the prefix must not be empty"},
		{"/name", "the prefix must be a DNS subdomain such as 'example.com'"},
		{"-bad.com/x", "the prefix must be a DNS subdomain such as 'example.com'"},
		{"bad_prefix.com/x", "the prefix must be a DNS subdomain such as 'example.com'"},
		{"a..b/x", "the prefix must be a DNS subdomain such as 'example.com'"},
		{strings.Repeat("p", 254) + "/k", "the prefix must be at most 253 characters"},
		{"cloudfoundry.org/x", "the prefix 'cloudfoundry.org' is reserved"},
		{"CloudFoundry.org/x", "the prefix 'cloudfoundry.org' is reserved"},
		{"sub.cloudfoundry.org/x", ""},
		{strings.Repeat("k", 64), "the name must be at most 63 characters"},
		{"has space", "the name may contain only letters, digits, '-', '_' and '.'"},
		{"ünicode", "the name may contain only letters, digits, '-', '_' and '.'"},
		{"emoji😀", "the name may contain only letters, digits, '-', '_' and '.'"},
		{"-lead", "the name must start and end with a letter or digit"},
		{"trail_", "the name must start and end with a letter or digit"},
		{".", "the name must start and end with a letter or digit"},
	}
	for _, tt := range tests {
		if got := metadataKeyProblem(tt.key); got != tt.want {
			t.Errorf("metadataKeyProblem(%q) = %q, want %q", shorten(tt.key), got, tt.want)
		}
	}
}

func TestMetadataLabelValueProblem(t *testing.T) {
	tests := []struct {
		value string
		want  string
	}{
		{"", ""},
		{"prod", ""},
		{"1.2.3_rc-1", ""},
		{strings.Repeat("v", 63), ""},
		{strings.Repeat("v", 64), "a value must be at most 63 characters"},
		{"a b", "a value may contain only letters, digits, '-', '_' and '.'"},
		{"a/b", "a value may contain only letters, digits, '-', '_' and '.'"},
		{"_x", "a value must start and end with a letter or digit"},
		{"x.", "a value must start and end with a letter or digit"},
	}
	for _, tt := range tests {
		if got := labelValueProblem(tt.value); got != tt.want {
			t.Errorf("labelValueProblem(%q) = %q, want %q", tt.value, got, tt.want)
		}
	}
}

func labelValue(s string) *string { return &s }

func TestMetadataValidate(t *testing.T) {
	tests := []struct {
		name string
		in   *metadataPayload
		want string
	}{
		{"nil", nil, ""},
		{"empty", &metadataPayload{}, ""},
		{"valid", &metadataPayload{
			Labels:      map[string]*string{"env": labelValue("prod"), "gone": nil, "empty": labelValue("")},
			Annotations: map[string]*string{"example.com/contact": labelValue("Bill tel(1111111) email(bill@fixme)"), "x": labelValue(strings.Repeat("é", 5000))},
		}, ""},
		{"every problem named", &metadataPayload{
			Labels:      map[string]*string{"b@d": labelValue("ok"), "good": labelValue("bad value")},
			Annotations: map[string]*string{"a/b/c": labelValue("v"), "long": labelValue(strings.Repeat("x", 5001))},
		}, "Metadata label key 'b@d' is invalid: the name may contain only letters, digits, '-', '_' and '.'; " +
			"Metadata label value 'bad value' of key 'good' is invalid: a value may contain only letters, digits, '-', '_' and '.'; " +
			"Metadata annotation key 'a/b/c' is invalid: a key has at most one '/', between its prefix and its name; " +
			"Metadata annotation value of key 'long' is invalid: a value must be at most 5000 characters"},
		{"deleting an invalid key", &metadataPayload{Labels: map[string]*string{"no way": nil}},
			"Metadata label key 'no way' is invalid: the name may contain only letters, digits, '-', '_' and '.'"},
		{"huge key shortened", &metadataPayload{Labels: map[string]*string{strings.Repeat("k", 100): labelValue("v")}},
			"Metadata label key '" + strings.Repeat("k", 64) + "...' is invalid: the name must be at most 63 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateMetadata(tt.in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("error = %v, want none", err)
				}
				return
			}
			var apiErr *apierr.Error
			if !errors.As(err, &apiErr) || apiErr.Status != 422 || apiErr.Detail != tt.want {
				t.Errorf("error = %v\nwant 422 %q", err, tt.want)
			}
		})
	}
}

func TestMetadataValuesAndPatch(t *testing.T) {
	in := &metadataPayload{
		Labels:      map[string]*string{"keep": labelValue("1"), "drop": nil},
		Annotations: map[string]*string{"note": labelValue("hi")},
	}
	labels, annotations := metadataValues(in)
	if diff := cmp.Diff(map[string]string{"keep": "1"}, labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"note": "hi"}, annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	if patch := metadataPatch(in); len(patch.Labels) != 2 || patch.Labels["drop"] != nil {
		t.Errorf("patch labels = %v, want keep and a nil drop", patch.Labels)
	}
	if patch := metadataPatch(nil); !patch.IsEmpty() {
		t.Errorf("patch of nil = %+v, want empty", patch)
	}
	labels, annotations = metadataValues(nil)
	if labels == nil || annotations == nil {
		t.Error("metadataValues(nil) returned nil maps")
	}
}

func TestLabelSelectorParse(t *testing.T) {
	tests := []struct {
		raw  string
		want store.LabelSelector
	}{
		{"env", store.LabelSelector{{Key: "env", Operator: store.LabelExists}}},
		{"!env", store.LabelSelector{{Key: "env", Operator: store.LabelNotExists}}},
		{"env=prod", store.LabelSelector{{Key: "env", Operator: store.LabelIn, Values: []string{"prod"}}}},
		{"env==prod", store.LabelSelector{{Key: "env", Operator: store.LabelIn, Values: []string{"prod"}}}},
		{"env=", store.LabelSelector{{Key: "env", Operator: store.LabelIn, Values: []string{""}}}},
		{"env!=prod", store.LabelSelector{{Key: "env", Operator: store.LabelNotIn, Values: []string{"prod"}}}},
		{"tier in (web,worker)", store.LabelSelector{{Key: "tier", Operator: store.LabelIn, Values: []string{"web", "worker"}}}},
		{"tier in ( web , worker )", store.LabelSelector{{Key: "tier", Operator: store.LabelIn, Values: []string{"web", "worker"}}}},
		{"tier notin (web)", store.LabelSelector{{Key: "tier", Operator: store.LabelNotIn, Values: []string{"web"}}}},
		{"tier in ()", store.LabelSelector{{Key: "tier", Operator: store.LabelIn}}},
		{"example.com/team=a", store.LabelSelector{{Key: "example.com/team", Operator: store.LabelIn, Values: []string{"a"}}}},
		{"env=dev,!chargeback-code,tier in (backend,worker)", store.LabelSelector{
			{Key: "env", Operator: store.LabelIn, Values: []string{"dev"}},
			{Key: "chargeback-code", Operator: store.LabelNotExists},
			{Key: "tier", Operator: store.LabelIn, Values: []string{"backend", "worker"}},
		}},
		{"a,,b,", store.LabelSelector{{Key: "a", Operator: store.LabelExists}, {Key: "b", Operator: store.LabelExists}}},
	}
	for _, tt := range tests {
		got, err := parseLabelSelector(tt.raw)
		if err != nil {
			t.Errorf("parseLabelSelector(%q): %v", tt.raw, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("parseLabelSelector(%q) (-want +got):\n%s", tt.raw, diff)
		}
	}
}

func TestLabelSelectorParseRejects(t *testing.T) {
	syntax := "is invalid: use key, !key, key=value, key==value, key!=value, key in (v1,v2) or key notin (v1,v2)"
	tests := []struct {
		raw  string
		want string
	}{
		{"", "label_selector is empty: give one or more requirements, such as 'env=prod'"},
		{" , ", "label_selector is empty: give one or more requirements, such as 'env=prod'"},
		{strings.Repeat("a,", 51), "label_selector has 51 requirements: the maximum is 50"},
		{"env prod", "label_selector requirement 'env prod' " + syntax},
		{"tier in web", "label_selector requirement 'tier in web' " + syntax},
		{"tier between (a,b)", "label_selector requirement 'tier between (a,b)' " + syntax},
		{"!", "label_selector requirement '!' is invalid: a key must not be empty"},
		{"=x", "label_selector requirement '=x' is invalid: a key must not be empty"},
		{"!!env", "label_selector requirement '!!env' is invalid: the name may contain only letters, digits, '-', '_' and '.'"},
		{"env=a=b", "label_selector requirement 'env=a=b' is invalid: a value may contain only letters, digits, '-', '_' and '.'"},
		{"tier in (ok,-bad)", "label_selector requirement 'tier in (ok,-bad)' is invalid: a value must start and end with a letter or digit"},
		{"cloudfoundry.org/x", "label_selector requirement 'cloudfoundry.org/x' is invalid: the prefix 'cloudfoundry.org' is reserved"},
	}
	for _, tt := range tests {
		_, err := parseLabelSelector(tt.raw)
		var apiErr *apierr.Error
		if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Detail != "The query parameter is invalid: "+tt.want {
			t.Errorf("parseLabelSelector(%q) error = %v\nwant 400 %q", tt.raw, err, tt.want)
		}
	}
	if sel, err := parseLabelSelector(strings.Repeat("a,", 50)); err != nil || len(sel) != 50 {
		t.Errorf("50 requirements: %d, %v; want accepted", len(sel), err)
	}
}
