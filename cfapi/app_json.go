package cfapi

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// appendJSON appends app encoded as json.Marshal encodes it, for lists of
// apps: on a page of 1,000 apps the reflection of encoding/json costs
// several times the writing, as BenchmarkAppJSON shows.
// TestAppJSONMatchesMarshal compares the two encodings, and
// TestAppJSONFields fails when appJSON gains a field this does not write.
func (app *appJSON) appendJSON(b []byte) ([]byte, error) {
	if len(app.Included) > 0 {
		return appendMarshal(b, app)
	}
	b = append(b, `{"guid":`...)
	b = appendJSONString(b, app.GUID)
	b = append(b, `,"created_at":`...)
	b = appendJSONString(b, app.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONString(b, app.UpdatedAt)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, app.Name)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, app.State)

	b = append(b, `,"lifecycle":{"type":`...)
	b = appendJSONString(b, app.Lifecycle.Type)
	b = append(b, `,"data":`...)
	var err error
	switch data := app.Lifecycle.Data.(type) {
	case buildpackLifecycleDataJSON:
		b = append(b, `{"buildpacks":`...)
		b = appendJSONStrings(b, data.Buildpacks)
		b = append(b, `,"stack":`...)
		b = appendJSONNullableString(b, data.Stack)
		b = append(b, '}')
	case struct{}:
		b = append(b, `{}`...)
	default:
		if b, err = appendMarshal(b, data); err != nil {
			return nil, err
		}
	}

	b = append(b, `},"relationships":{"space":{"data":`...)
	if ref := app.Relationships.Space.Data; ref != nil {
		b = append(b, `{"guid":`...)
		b = appendJSONString(b, ref.GUID)
		b = append(b, '}')
	} else {
		b = append(b, `null`...)
	}
	b = append(b, `},"current_droplet":{"data":{"guid":`...)
	b = appendJSONNullableString(b, app.Relationships.CurrentDroplet.Data.GUID)

	b = append(b, `}}},"metadata":{"labels":`...)
	b = appendJSONStringMap(b, app.Metadata.Labels)
	b = append(b, `,"annotations":`...)
	b = appendJSONStringMap(b, app.Metadata.Annotations)

	l := &app.Links
	b = append(b, `},"links":{`...)
	for i, field := range []struct {
		key  string
		link *link
	}{
		{"self", &l.Self}, {"environment_variables", &l.EnvironmentVariables}, {"space", &l.Space},
		{"processes", &l.Processes}, {"packages", &l.Packages}, {"current_droplet", &l.CurrentDroplet},
		{"droplets", &l.Droplets}, {"tasks", &l.Tasks}, {"start", &l.Start}, {"stop", &l.Stop},
		{"revisions", &l.Revisions}, {"deployed_revisions", &l.DeployedRevisions}, {"features", &l.Features},
	} {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, field.key)
		b = append(b, `:{"href":`...)
		b = appendJSONString(b, field.link.Href)
		if field.link.Method != "" {
			b = append(b, `,"method":`...)
			b = appendJSONString(b, field.link.Method)
		}
		b = append(b, '}')
	}
	return append(b, `}}`...), nil
}

// appendMarshal appends v encoded by json.Marshal.
func appendMarshal(b []byte, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}

// appendJSONNullableString appends *s as a JSON string, or null.
func appendJSONNullableString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, `null`...)
	}
	return appendJSONString(b, *s)
}

// appendJSONStrings appends a JSON array of strings, or null for a nil
// slice.
func appendJSONStrings(b []byte, values []string) []byte {
	if values == nil {
		return append(b, `null`...)
	}
	b = append(b, '[')
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return append(b, ']')
}

// appendJSONStringMap appends a JSON object with sorted keys, or null for a
// nil map.
func appendJSONStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, `null`...)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// jsonSafeASCII marks the ASCII bytes that appendJSONString copies as they
// are.
var jsonSafeASCII = func() (safe [utf8.RuneSelf]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		safe[c] = !strings.ContainsRune(`"\\<>&`, c)
	}
	return safe
}()

// appendJSONString appends s as a JSON string with encoding/json's
// escaping: quotes, backslashes and control characters; <, > and & for
// HTML; U+2028 and U+2029 for JavaScript; and U+FFFD for invalid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
