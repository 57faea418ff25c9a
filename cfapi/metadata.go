package cfapi

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// Limits on metadata that Cloud Controller enforces, the same as
// Kubernetes' limits on label keys and values.
const (
	maxMetadataPrefixLength  = 253
	maxMetadataNameLength    = 63
	maxLabelValueLength      = 63
	maxAnnotationValueLength = 5000
	maxLabelRequirements     = 50
	// reservedMetadataPrefix is kept for Cloud Foundry's own keys.
	reservedMetadataPrefix = "cloudfoundry.org"
)

var (
	// metadataCharset is the alphabet of label key names and label values:
	// letters, digits, '-', '_' and '.'.
	metadataCharset = regexp.MustCompile(`^[A-Za-z0-9_.-]*$`)
	// dnsSubdomain is a key prefix: dot-separated DNS labels.
	dnsSubdomain = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
)

// metadataPayload is the metadata object of a create or update request. A
// null value deletes its key on update and is ignored on create.
type metadataPayload struct {
	Labels      map[string]*string `json:"labels"`
	Annotations map[string]*string `json:"annotations"`
}

// metadataJSON is metadata as every resource presents it: both objects are
// always present, never null.
type metadataJSON struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

func presentMetadata(labels, annotations map[string]string) metadataJSON {
	if labels == nil {
		labels = map[string]string{}
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	return metadataJSON{Labels: labels, Annotations: annotations}
}

// validateMetadata checks every key and value of m and returns a 422 that
// names each invalid key, or nil. A nil m is valid.
func validateMetadata(m *metadataPayload) error {
	if m == nil {
		return nil
	}
	var problems []string
	for _, key := range sortedKeys(m.Labels) {
		if msg := metadataKeyProblem(key); msg != "" {
			problems = append(problems, fmt.Sprintf("Metadata label key '%s' is invalid: %s", shorten(key), msg))
		}
		if value := m.Labels[key]; value != nil {
			if msg := labelValueProblem(*value); msg != "" {
				problems = append(problems, fmt.Sprintf("Metadata label value '%s' of key '%s' is invalid: %s", shorten(*value), shorten(key), msg))
			}
		}
	}
	for _, key := range sortedKeys(m.Annotations) {
		if msg := metadataKeyProblem(key); msg != "" {
			problems = append(problems, fmt.Sprintf("Metadata annotation key '%s' is invalid: %s", shorten(key), msg))
		}
		if value := m.Annotations[key]; value != nil && utf8.RuneCountInString(*value) > maxAnnotationValueLength {
			problems = append(problems, fmt.Sprintf("Metadata annotation value of key '%s' is invalid: a value must be at most %d characters", shorten(key), maxAnnotationValueLength))
		}
	}
	if len(problems) > 0 {
		return apierr.UnprocessableEntity(strings.Join(problems, "; "))
	}
	return nil
}

// metadataKeyProblem describes what is wrong with a label or annotation key,
// or returns "" for a valid key. A key is an optional DNS-subdomain prefix
// and '/', then a name.
func metadataKeyProblem(key string) string {
	if key == "" {
		return "a key must not be empty"
	}
	if strings.Count(key, "/") > 1 {
		return "a key has at most one '/', between its prefix and its name"
	}
	prefix, name, hasPrefix := strings.Cut(key, "/")
	if !hasPrefix {
		prefix, name = "", key
	}
	if hasPrefix {
		switch {
		case len(prefix) > maxMetadataPrefixLength:
			return fmt.Sprintf("the prefix must be at most %d characters", maxMetadataPrefixLength)
		case !dnsSubdomain.MatchString(prefix):
			return "the prefix must be a DNS subdomain such as 'example.com'"
		case strings.EqualFold(prefix, reservedMetadataPrefix):
			return "the prefix '" + reservedMetadataPrefix + "' is reserved"
		}
	}
	if name == "" {
		return "the name after the prefix must not be empty"
	}
	return tokenProblem("the name", name, maxMetadataNameLength)
}

// labelValueProblem describes what is wrong with a label value, or returns
// "" for a valid one. The empty value is valid.
func labelValueProblem(value string) string {
	if value == "" {
		return ""
	}
	return tokenProblem("a value", value, maxLabelValueLength)
}

func tokenProblem(what, s string, maxLength int) string {
	switch {
	case len(s) > maxLength:
		return fmt.Sprintf("%s must be at most %d characters", what, maxLength)
	case !metadataCharset.MatchString(s):
		return what + " may contain only letters, digits, '-', '_' and '.'"
	case !isAlphanumeric(s[0]) || !isAlphanumeric(s[len(s)-1]):
		return what + " must start and end with a letter or digit"
	}
	return ""
}

func isAlphanumeric(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// shorten keeps error messages readable when a client sends a huge key.
func shorten(s string) string {
	const keep = 64
	if len(s) <= keep {
		return s
	}
	cut := keep
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func sortedKeys(m map[string]*string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// metadataPatch turns a validated update payload into the store's PATCH:
// keys with values are set, keys with null are deleted.
func metadataPatch(m *metadataPayload) store.MetadataPatch {
	if m == nil {
		return store.MetadataPatch{}
	}
	return store.MetadataPatch{Labels: m.Labels, Annotations: m.Annotations}
}

// metadataValues returns the labels and annotations a create request sets,
// ignoring null values because there is nothing to delete yet.
func metadataValues(m *metadataPayload) (labels, annotations map[string]string) {
	labels, annotations = map[string]string{}, map[string]string{}
	if m == nil {
		return labels, annotations
	}
	for k, v := range m.Labels {
		if v != nil {
			labels[k] = *v
		}
	}
	for k, v := range m.Annotations {
		if v != nil {
			annotations[k] = *v
		}
	}
	return labels, annotations
}

// metadataRequest returns metadata in the form an audit event's data.request
// records it.
func metadataRequest(m *metadataPayload) map[string]any {
	out := map[string]any{}
	if m.Labels != nil {
		out["labels"] = m.Labels
	}
	if m.Annotations != nil {
		out["annotations"] = m.Annotations
	}
	return out
}

// labelSelectorOf parses the label_selector parameter of a list request. It
// returns nil when the parameter is absent. The raw value is used because
// requirements such as "tier in (web,worker)" contain commas.
func labelSelectorOf(q *listQuery) (store.LabelSelector, error) {
	if !q.has("label_selector") {
		return nil, nil
	}
	return parseLabelSelector(q.values.Get("label_selector"))
}

// parseLabelSelector parses a label selector: comma-separated requirements,
// each one of "key", "!key", "key=value", "key==value", "key!=value",
// "key in (v1,v2)" or "key notin (v1,v2)". Problems are 400s, as for any
// invalid query parameter.
func parseLabelSelector(raw string) (store.LabelSelector, error) {
	parts := splitRequirements(raw)
	if len(parts) == 0 {
		return nil, apierr.BadQueryParameter("label_selector is empty: give one or more requirements, such as 'env=prod'")
	}
	if len(parts) > maxLabelRequirements {
		return nil, apierr.BadQueryParameter(fmt.Sprintf("label_selector has %d requirements: the maximum is %d", len(parts), maxLabelRequirements))
	}

	sel := make(store.LabelSelector, 0, len(parts))
	for _, part := range parts {
		req, ok := parseRequirement(part)
		if !ok {
			return nil, apierr.BadQueryParameter("label_selector requirement '" + shorten(part) +
				"' is invalid: use key, !key, key=value, key==value, key!=value, key in (v1,v2) or key notin (v1,v2)")
		}
		if msg := metadataKeyProblem(req.Key); msg != "" {
			return nil, apierr.BadQueryParameter("label_selector requirement '" + shorten(part) + "' is invalid: " + msg)
		}
		for _, v := range req.Values {
			if msg := labelValueProblem(v); msg != "" {
				return nil, apierr.BadQueryParameter("label_selector requirement '" + shorten(part) + "' is invalid: " + msg)
			}
		}
		sel = append(sel, req)
	}
	return sel, nil
}

// splitRequirements splits a selector at the commas that are not inside
// parentheses, dropping empty requirements.
func splitRequirements(raw string) []string {
	var parts []string
	depth, start := 0, 0
	flush := func(end int) {
		if part := strings.TrimSpace(raw[start:end]); part != "" {
			parts = append(parts, part)
		}
	}
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				flush(i)
				start = i + 1
			}
		}
	}
	flush(len(raw))
	return parts
}

// setRequirement matches "key in (…)" and "key notin (…)".
var setRequirement = regexp.MustCompile(`^(\S+)\s+(in|notin)\s*\((.*)\)$`)

// parseRequirement parses one trimmed requirement. It checks only the
// syntax, and the caller validates the key and values.
func parseRequirement(s string) (store.LabelRequirement, bool) {
	if m := setRequirement.FindStringSubmatch(s); m != nil {
		op := store.LabelIn
		if m[2] == "notin" {
			op = store.LabelNotIn
		}
		var values []string
		if strings.TrimSpace(m[3]) != "" {
			values = splitList(m[3])
		}
		return store.LabelRequirement{Key: m[1], Operator: op, Values: values}, true
	}
	if strings.ContainsAny(s, " ()") {
		return store.LabelRequirement{}, false
	}
	if key, value, found := strings.Cut(s, "!="); found {
		return store.LabelRequirement{Key: key, Operator: store.LabelNotIn, Values: []string{value}}, true
	}
	if key, value, found := strings.Cut(s, "=="); found {
		return store.LabelRequirement{Key: key, Operator: store.LabelIn, Values: []string{value}}, true
	}
	if key, value, found := strings.Cut(s, "="); found {
		return store.LabelRequirement{Key: key, Operator: store.LabelIn, Values: []string{value}}, true
	}
	if key, found := strings.CutPrefix(s, "!"); found {
		return store.LabelRequirement{Key: key, Operator: store.LabelNotExists}, true
	}
	return store.LabelRequirement{Key: s, Operator: store.LabelExists}, true
}
