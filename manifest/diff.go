package manifest

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Change is one difference between a manifest and the current state, in
// the form of Cloud Controller's manifest_diff: Op is "add", "remove" or
// "replace", and Path is a JSON pointer into the manifest, such as
// "/applications/0/processes/1/instances".
type Change struct {
	Op    string
	Path  string
	Was   any
	Value any
}

// Change operations.
const (
	OpAdd     = "add"
	OpRemove  = "remove"
	OpReplace = "replace"
)

// diffKeys are the application keys a diff compares, Cloud Controller's
// manifest keys with dashes. Others, such as "path" or "no_route" written
// with an underscore, are ignored.
var diffKeys = []string{
	"buildpack", "buildpacks", "command", "disk-quota", "log-rate-limit-per-second", "docker", "env",
	"health-check-http-endpoint", "health-check-invocation-timeout", "health-check-interval", "health-check-timeout",
	"health-check-type", "readiness-health-check-http-endpoint", "readiness-health-check-type",
	"readiness-health-check-invocation-timeout", "readiness-health-check-interval", "instances", "metadata", "memory",
	"lifecycle", "name", "no-route", "processes", "random-route", "default-route", "routes", "services", "sidecars",
	"stack", "timeout", "cnb-credentials", "features", "cpu",
}

// processDiffKeys are the keys of a processes entry a diff compares.
var processDiffKeys = []string{
	"type", "command", "user", "disk_quota", "log-rate-limit-per-second", "health-check-http-endpoint",
	"health-check-invocation-timeout", "health-check-interval", "health-check-type",
	"readiness-health-check-http-endpoint", "readiness-health-check-invocation-timeout",
	"readiness-health-check-interval", "readiness-health-check-type", "instances", "memory", "timeout", "cpu",
}

// listIdentities name the key that identifies an entry of a list, so a
// diff pairs the entries of the manifest with those of the state.
var listIdentities = map[string]string{"processes": "type", "routes": "route", "sidecars": "name"}

// Diff compares the applications of m with their current states: states[i]
// is the state of m.Applications[i], or nil for an app that does not exist
// yet, whose every key is then an addition. As in Cloud Controller, only
// the keys in the manifest are compared: processes, routes and sidecars the
// manifest does not list are not removals, top-level memory and disk are
// never compared, and the web process's settings count as the app's
// top-level keys. Unlike Cloud Controller, env, metadata and features
// compare only the keys the manifest names, because applying a manifest
// never removes the others, and env values are compared as the strings
// they become.
func Diff(m *Manifest, states []*AppState) []Change {
	var changes []Change
	for i, app := range m.Applications {
		var state map[string]any
		if i < len(states) && states[i] != nil {
			state = withWebProcess(states[i].Hash())
		}
		changes = append(changes, diffApplication(i, normalizeApplication(app.Raw), state)...)
	}
	return changes
}

// withWebProcess adds the web process's keys to an app's top level.
func withWebProcess(state map[string]any) map[string]any {
	processes, _ := state["processes"].([]any)
	for _, p := range processes {
		if process, _ := p.(map[string]any); process["type"] == ProcessTypeWeb {
			maps.Copy(state, process)
		}
	}
	return state
}

func diffApplication(index int, app, state map[string]any) []Change {
	if state == nil {
		state = map[string]any{}
	}
	if _, found := app["disk-quota"]; found {
		state["disk-quota"] = state["disk_quota"]
	}

	var changes []Change
	for _, key := range slices.Sorted(maps.Keys(app)) {
		if !slices.Contains(diffKeys, key) {
			continue
		}
		value, current := app[key], state[key]
		_, isList := listIdentities[key]
		nested := isList && present(current)
		switch {
		case nested:
			current = pruneList(current, value, listIdentities[key])
		case key == "env" || key == "features":
			current = pruneMap(current, value)
		case key == "metadata":
			current = pruneMetadata(current, value)
		case key == "memory" || key == "disk-quota" || key == "disk_quota":
			continue
		}
		for _, c := range diffValues("/applications/"+strconv.Itoa(index)+"/"+key, current, value) {
			if c.Op == OpReplace && c.Was == nil {
				c.Op = OpAdd
			}
			changes = append(changes, c)
		}
	}
	return changes
}

// normalizeApplication returns the keys of a raw manifest application in
// the form the state has them. Sizes are in megabytes ("1G" is "1024M"),
// log rates in their largest unit and env values are strings. Processes,
// services, metadata and sidecars keep only the keys a diff compares.
func normalizeApplication(raw map[string]any) map[string]any {
	app := maps.Clone(raw)
	normalizeSizes(app)
	normalizeCPU(app)
	if env, isMap := app["env"].(map[string]any); isMap {
		values := make(map[string]any, len(env))
		for k, v := range env {
			values[k] = stringify(v)
		}
		app["env"] = values
	}
	if list, isList := app["processes"].([]any); isList {
		processes := make([]any, len(list))
		for i, item := range list {
			process, _ := item.(map[string]any)
			process = sliceKeys(process, processDiffKeys)
			normalizeSizes(process)
			normalizeCPU(process)
			processes[i] = process
		}
		app["processes"] = processes
	}
	if list, isList := app["services"].([]any); isList {
		services := make([]any, len(list))
		for i, item := range list {
			if service, isMap := item.(map[string]any); isMap {
				item = sliceKeys(service, []string{"name", "parameters"})
			}
			services[i] = item
		}
		app["services"] = services
	}
	if metadata, isMap := app["metadata"].(map[string]any); isMap {
		app["metadata"] = sliceKeys(metadata, []string{"labels", "annotations"})
	}
	if list, isList := app["sidecars"].([]any); isList {
		sidecars := make([]any, len(list))
		for i, item := range list {
			sidecar, _ := item.(map[string]any)
			sidecar = sliceKeys(sidecar, []string{"name", "command", "process_types", "memory"})
			normalizeSizes(sidecar)
			sidecars[i] = sidecar
		}
		app["sidecars"] = sidecars
	}
	return app
}

func sliceKeys(m map[string]any, keys []string) map[string]any {
	out := map[string]any{}
	for _, k := range keys {
		if v, found := m[k]; found {
			out[k] = v
		}
	}
	return out
}

// normalizeSizes rewrites the memory, disk and log rate values of m in
// place. A value that does not parse stays as it is.
func normalizeSizes(m map[string]any) {
	for _, key := range []string{"memory", "disk-quota", "disk_quota"} {
		if v, found := m[key]; found && v != nil {
			if mb, err := ParseMegabytes(stringify(v)); err == nil {
				m[key] = FormatMegabytes(mb)
			}
		}
	}
	if v, found := m["log-rate-limit-per-second"]; found && v != nil {
		switch s := strings.TrimSpace(stringify(v)); s {
		case "-1":
			m["log-rate-limit-per-second"] = int64(UnlimitedLogRate)
		case "0":
			m["log-rate-limit-per-second"] = "0"
		default:
			if bytes, err := ParseBytes(s); err == nil {
				m["log-rate-limit-per-second"] = FormatBytes(bytes)
			}
		}
	}
}

// normalizeCPU rewrites the cpu value of m in place to the form the state
// renders, so "1000m", 1 and "1.0" compare equal. A value that does not
// parse stays as it is.
//
// NOTE: "cpu: default" is left out of the diff, so a diff never reports
// that applying the manifest resets a process's CPU limit.
func normalizeCPU(m map[string]any) {
	v, found := m["cpu"]
	if !found || v == nil {
		return
	}
	s := strings.TrimSpace(stringify(v))
	if s == "default" {
		delete(m, "cpu")
		return
	}
	if millicores, err := ParseCPU(s); err == nil {
		m["cpu"] = FormatCPU(millicores)
	}
}

// present reports whether v is a value Ruby calls present: not nil, and
// not an empty string, list or mapping.
func present(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case string:
		return strings.TrimSpace(t) != ""
	case []any:
		return len(t) > 0
	case map[string]any:
		return len(t) > 0
	}
	return true
}

// pruneList keeps the entries of the current list that the manifest's
// list names, with only the keys the manifest's entry has.
func pruneList(current, manifest any, identity string) any {
	currentList, _ := current.([]any)
	manifestList, _ := manifest.([]any)
	var pruned []any
	for _, item := range currentList {
		entry, _ := item.(map[string]any)
		for _, listed := range manifestList {
			want, _ := listed.(map[string]any)
			if want == nil || entry == nil || !reflect.DeepEqual(want[identity], entry[identity]) {
				continue
			}
			compared := map[string]any{}
			for k, v := range entry {
				if want[k] != nil {
					compared[k] = v
				}
			}
			pruned = append(pruned, compared)
			break
		}
	}
	return pruned
}

// pruneMap keeps the keys of current that manifest has.
func pruneMap(current, manifest any) any {
	currentMap, isMap := current.(map[string]any)
	manifestMap, _ := manifest.(map[string]any)
	if !isMap {
		return current
	}
	pruned := map[string]any{}
	for k, v := range currentMap {
		if _, found := manifestMap[k]; found {
			pruned[k] = v
		}
	}
	return pruned
}

func pruneMetadata(current, manifest any) any {
	currentMap, isMap := current.(map[string]any)
	manifestMap, _ := manifest.(map[string]any)
	if !isMap {
		return current
	}
	pruned := map[string]any{}
	for _, part := range []string{"labels", "annotations"} {
		if want, found := manifestMap[part]; found {
			pruned[part] = pruneMap(currentMap[part], want)
		}
	}
	return pruned
}

// diffValues lists the changes that turn was into value at path.
func diffValues(path string, was, value any) []Change {
	wasMap, wasIsMap := was.(map[string]any)
	valueMap, valueIsMap := value.(map[string]any)
	if wasIsMap && valueIsMap {
		return diffMaps(path, wasMap, valueMap)
	}
	wasList, wasIsList := was.([]any)
	valueList, valueIsList := value.([]any)
	if wasIsList && valueIsList {
		return diffLists(path, wasList, valueList)
	}
	if equal(was, value) {
		return nil
	}
	if was == nil {
		return []Change{{Op: OpAdd, Path: path, Value: value}}
	}
	return []Change{{Op: OpReplace, Path: path, Was: was, Value: value}}
}

func diffMaps(path string, was, value map[string]any) []Change {
	var changes []Change
	for _, k := range slices.Sorted(maps.Keys(was)) {
		if _, found := value[k]; !found {
			changes = append(changes, Change{Op: OpRemove, Path: path + "/" + pointerEscape(k), Was: was[k]})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(value)) {
		old, found := was[k]
		if !found {
			changes = append(changes, Change{Op: OpAdd, Path: path + "/" + pointerEscape(k), Value: value[k]})
			continue
		}
		changes = append(changes, diffValues(path+"/"+pointerEscape(k), old, value[k])...)
	}
	return changes
}

// diffLists pairs each entry of value with a similar entry of was: the
// same "type" or "name" or "route" for mappings, an equal value for the
// rest. Paired entries are compared at their index in value. A value left
// unpaired replaces an unpaired one at the same index of was when neither
// is a mapping. Other entries only in value are additions, and entries
// only in was are removals.
func diffLists(path string, was, value []any) []Change {
	paired := make([]bool, len(was))
	match := make([]int, len(value))
	for j, item := range value {
		match[j] = similarEntry(was, paired, item)
		if match[j] >= 0 {
			paired[match[j]] = true
		}
	}
	for j, item := range value {
		_, itemIsMap := item.(map[string]any)
		if match[j] < 0 && j < len(was) && !paired[j] && !itemIsMap {
			if _, wasIsMap := was[j].(map[string]any); !wasIsMap {
				match[j] = j
				paired[j] = true
			}
		}
	}

	var changes []Change
	for j, item := range value {
		if match[j] < 0 {
			changes = append(changes, Change{Op: OpAdd, Path: path + "/" + strconv.Itoa(j), Value: item})
			continue
		}
		changes = append(changes, diffValues(path+"/"+strconv.Itoa(j), was[match[j]], item)...)
	}
	for i := len(was) - 1; i >= 0; i-- {
		if !paired[i] {
			changes = append(changes, Change{Op: OpRemove, Path: path + "/" + strconv.Itoa(i), Was: was[i]})
		}
	}
	return changes
}

func similarEntry(was []any, paired []bool, item any) int {
	itemMap, itemIsMap := item.(map[string]any)
	for i, candidate := range was {
		if paired[i] {
			continue
		}
		candidateMap, candidateIsMap := candidate.(map[string]any)
		if !itemIsMap || !candidateIsMap {
			if equal(candidate, item) {
				return i
			}
			continue
		}
		for _, key := range []string{"type", "name", "route"} {
			want, found := itemMap[key]
			if found {
				if equal(candidateMap[key], want) {
					return i
				}
				break
			}
		}
	}
	return -1
}

// equal compares decoded values, treating whole floats and integers alike.
func equal(a, b any) bool {
	if fa, isFloat := a.(float64); isFloat {
		if ib, isInt := b.(int64); isInt {
			return fa == float64(ib)
		}
	}
	if ia, isInt := a.(int64); isInt {
		if fb, isFloat := b.(float64); isFloat {
			return float64(ia) == fb
		}
	}
	return reflect.DeepEqual(a, b)
}

// pointerEscape escapes a key for a JSON pointer path.
func pointerEscape(key string) string {
	return strings.ReplaceAll(strings.ReplaceAll(key, "~", "~0"), "/", "~1")
}
