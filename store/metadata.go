package store

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/lib/pq"
)

// MetadataPatch is a Cloud Controller metadata PATCH: a key with a value
// sets it, a key with a nil value deletes it, and absent keys stay as they
// are. The HTTP layer has validated every key and value.
type MetadataPatch struct {
	Labels      map[string]*string
	Annotations map[string]*string
}

// IsEmpty reports whether the patch changes nothing.
func (p MetadataPatch) IsEmpty() bool { return len(p.Labels) == 0 && len(p.Annotations) == 0 }

// splitPatch separates a patch map into the jsonb object to merge and the
// keys to delete, as parameters for "(col || $set) - $delete".
func splitPatch(patch map[string]*string) (set []byte, remove any, err error) {
	values := map[string]string{}
	deleted := []string{}
	for key, value := range patch {
		if value == nil {
			deleted = append(deleted, key)
			continue
		}
		values[key] = *value
	}
	set, err = json.Marshal(values)
	if err != nil {
		return nil, nil, fmt.Errorf("encode metadata: %w", err)
	}
	slices.Sort(deleted)
	return set, pq.Array(deleted), nil
}

// metadataAssignments renders the SET clauses that apply patch to the
// labels and annotations columns. It returns "" when the patch changes
// nothing.
func metadataAssignments(patch MetadataPatch, a *args) (string, error) {
	clause := ""
	for _, part := range []struct {
		column string
		values map[string]*string
	}{{"labels", patch.Labels}, {"annotations", patch.Annotations}} {
		if len(part.values) == 0 {
			continue
		}
		set, remove, err := splitPatch(part.values)
		if err != nil {
			return "", err
		}
		clause += ", " + part.column + " = (" + part.column + " || " + a.add(set) + "::jsonb) - " + a.add(remove) + "::text[]"
	}
	return clause, nil
}

// metadataJSON encodes labels or annotations for a jsonb column; nil is
// the empty object.
func metadataJSON(m map[string]string) []byte {
	if m == nil {
		m = map[string]string{}
	}
	raw, _ := json.Marshal(m) // A map of strings always encodes.
	return raw
}

// jsonMap decodes a jsonb object of strings scanned as bytes.
func jsonMap(raw []byte) (map[string]string, error) {
	out := map[string]string{}
	// PostgreSQL renders an empty jsonb object, which most rows hold, as
	// "{}": it needs no decoder, which list queries would otherwise run
	// twice per row.
	if len(raw) == 0 || string(raw) == "{}" {
		return out, nil
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode metadata: %w", err)
	}
	return out, nil
}

// LabelOperator is the operator of one label_selector requirement.
type LabelOperator int

// The label_selector operators Cloud Controller supports.
const (
	// LabelExists matches "key": the label is set, to any value.
	LabelExists LabelOperator = iota
	// LabelNotExists matches "!key".
	LabelNotExists
	// LabelIn matches "key=v", "key==v" and "key in (v1,v2)".
	LabelIn
	// LabelNotIn matches "key!=v" and "key notin (v1,v2)", including
	// resources without the label.
	LabelNotIn
)

// LabelRequirement is one requirement of a label selector.
type LabelRequirement struct {
	Key      string
	Operator LabelOperator
	Values   []string
}

// LabelSelector is a parsed label_selector. A resource matches when every
// requirement holds.
type LabelSelector []LabelRequirement

// condition renders the selector as a SQL condition over the jsonb labels
// column col, or "TRUE" when the selector is empty.
func (sel LabelSelector) condition(col string, a *args) string {
	if len(sel) == 0 {
		return "TRUE"
	}
	cond := ""
	for i, req := range sel {
		if i > 0 {
			cond += " AND "
		}
		cond += req.condition(col, a)
	}
	return "(" + cond + ")"
}

func (req LabelRequirement) condition(col string, a *args) string {
	switch req.Operator {
	case LabelExists:
		return col + " ? " + a.add(req.Key)
	case LabelNotExists:
		return "NOT (" + col + " ? " + a.add(req.Key) + ")"
	case LabelIn:
		if len(req.Values) == 1 {
			// Containment can use the GIN index on the column.
			raw, _ := json.Marshal(map[string]string{req.Key: req.Values[0]})
			return col + " @> " + a.add(raw) + "::jsonb"
		}
		return "(" + col + " ->> " + a.add(req.Key) + ") = ANY(" + a.add(pq.Array(req.Values)) + "::text[])"
	default:
		// A resource without the label has no value to compare, so it
		// matches: COALESCE turns the NULL comparison into false.
		return "NOT COALESCE((" + col + " ->> " + a.add(req.Key) + ") = ANY(" + a.add(pq.Array(req.Values)) + "::text[]), false)"
	}
}

// cloneMap returns a copy of m that is never nil, so stored metadata is
// always a JSON object.
func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
