package manifest

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// errAliases is returned for a document with anchors or aliases, which
// Cloud Controller rejects because an alias can expand a small document
// into a huge one.
var errAliases = errors.New("manifest uses anchors or aliases")

// decodeYAML decodes one YAML document into plain Go values: map[string]any
// for mappings, []any for sequences, and string, int64, float64, bool or
// nil for scalars. Timestamps and other tagged scalars stay strings.
func decodeYAML(data []byte) (any, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return nodeValue(doc.Content[0])
}

func nodeValue(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return nil, errAliases
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			if key.Kind != yaml.ScalarNode {
				return nil, errors.New("a mapping key is not a scalar")
			}
			if key.Value == "<<" && key.Tag == "!!merge" {
				return nil, errAliases
			}
			v, err := nodeValue(value)
			if err != nil {
				return nil, err
			}
			m[key.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			v, err := nodeValue(item)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		return scalarValue(n)
	}
	return nil, errors.New("unsupported YAML node")
}

func scalarValue(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		err := n.Decode(&b)
		return b, err
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			// An integer beyond int64 is kept as text, so range checks
			// report it instead of the decoder.
			return n.Value, nil
		}
		return i, nil
	case "!!float":
		var f float64
		err := n.Decode(&f)
		return f, err
	}
	return n.Value, nil
}

// stringify renders a scalar the way Cloud Controller turns manifest
// values into strings, such as environment variable values: 42 is "42",
// true is "true" and null is "". Mappings and sequences become JSON-like
// text, because an environment variable holds only a string.
func stringify(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case float64:
		s := strconv.FormatFloat(t, 'f', -1, 64)
		if !strings.ContainsAny(s, ".eEN") {
			// Ruby writes a whole float with ".0", as in "3.0".
			s += ".0"
		}
		return s
	}
	return compactJSON(v)
}
