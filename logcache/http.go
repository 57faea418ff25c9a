package logcache

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ferrycf/ferry/auth"
)

// Version is the log-cache version /api/v1/info reports. The cf CLI reads
// logs from /api/v1/read only when it is at least 2.0.0.
const Version = "2.11.4"

// Read limits, as log-cache applies them.
const (
	DefaultReadLimit = 100
	MaxReadLimit     = 1000
)

// Envelope types a read may ask for. The store holds only logs, so a read
// for other types returns an empty batch.
var envelopeTypes = map[string]bool{
	"ANY": true, "LOG": true, "COUNTER": true, "GAUGE": true, "TIMER": true, "EVENT": true,
	"0": true, "1": true, "2": true, "3": true, "4": true, "5": true,
}

// gRPC status codes that log-cache's HTTP gateway puts in error bodies.
const (
	codeInvalidArgument = 3
	codeInternal        = 13
)

// Handler serves the log-cache read API over a Store:
//
//	GET /api/v1/info              version; needs no token
//	GET /api/v1/read/{source_id}  lines of one source
//	GET /api/v1/meta              what the store holds per source
//
// Like log-cache's authorization proxy, it responds 404 with an empty body
// when the token is missing or invalid and when the actor may not read the
// source. So a client cannot tell apps it may not see from missing apps. Invalid parameters are 400 with the body log-cache's gateway sends,
// {"code":3,"message":…,"details":[]}. log-cache itself responds 500 to an
// out-of-range limit or a start_time after end_time. Ferry responds 400
// because the request is at fault, and the cf CLI treats both alike.
type Handler struct {
	store   *Store
	access  *Access
	logger  *slog.Logger
	now     func() time.Time
	started time.Time
	mux     *http.ServeMux
}

// NewHandler returns the read API over st, authorizing with access.
func NewHandler(st *Store, access *Access, logger *slog.Logger) *Handler {
	h := &Handler{store: st, access: access, logger: logger, now: time.Now}
	h.started = h.now()
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /api/v1/info", h.info)
	h.mux.HandleFunc("GET /api/v1/read/{source_id...}", h.read)
	h.mux.HandleFunc("GET /api/v1/meta", h.meta)
	return h
}

// ServeHTTP routes r to the API's endpoints.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	h.mux.ServeHTTP(rec, r)
	// A tailing cf CLI polls four times a second, so requests are logged at
	// debug level only.
	h.logger.Debug("log-cache request", "method", r.Method, "path", r.URL.Path,
		"status", rec.status, "duration_ms", h.now().Sub(start).Milliseconds())
}

// info reports the version, and the seconds since the handler started as
// vm_uptime, where log-cache reports its machine's uptime.
func (h *Handler) info(w http.ResponseWriter, r *http.Request) {
	uptime := int64(h.now().Sub(h.started) / time.Second)
	writeJSON(w, http.StatusOK, map[string]string{"version": Version, "vm_uptime": strconv.FormatInt(uptime, 10)})
}

func (h *Handler) read(w http.ResponseWriter, r *http.Request) {
	sourceID := r.PathValue("source_id")
	if !h.authorize(w, r, sourceID) {
		return
	}

	params, err := parseReadParams(r, h.now())
	if err != nil {
		writeGatewayError(w, http.StatusBadRequest, codeInvalidArgument, err.Error())
		return
	}

	var batch []Envelope
	if params.logs {
		batch = h.store.Read(sourceID, params.query)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(appendReadResponse(make([]byte, 0, 256+len(batch)*256), batch))
}

// meta lists the sources the actor may read.
func (h *Handler) meta(w http.ResponseWriter, r *http.Request) {
	actor, ok := h.actor(w, r)
	if !ok {
		return
	}

	type metaJSON struct {
		Count           int64 `json:"count,string"`
		Expired         int64 `json:"expired,string"`
		OldestTimestamp int64 `json:"oldest_timestamp,string"`
		NewestTimestamp int64 `json:"newest_timestamp,string"`
	}
	meta := map[string]metaJSON{}
	// NOTE: a user who may read few of many sources costs one app lookup
	// per uncached source. List the visible apps in one query if this
	// endpoint becomes hot. The cf CLI never calls it.
	for id, m := range h.store.Meta() {
		allowed, err := h.access.CanRead(r.Context(), actor, id)
		if err != nil {
			h.internalError(w, err, "source_id", id)
			return
		}
		if allowed {
			meta[id] = metaJSON(m)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": meta})
}

// authorize writes the response and returns false unless the request's
// actor may read sourceID.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, sourceID string) bool {
	actor, ok := h.actor(w, r)
	if !ok {
		return false
	}
	if sourceID == "" {
		w.WriteHeader(http.StatusNotFound)
		return false
	}
	allowed, err := h.access.CanRead(r.Context(), actor, sourceID)
	if err != nil {
		h.internalError(w, err, "source_id", sourceID)
		return false
	}
	if !allowed {
		w.WriteHeader(http.StatusNotFound)
		return false
	}
	return true
}

func (h *Handler) actor(w http.ResponseWriter, r *http.Request) (*auth.Actor, bool) {
	actor, err := h.access.Actor(r.Context(), r.Header.Get("Authorization"))
	if errors.Is(err, ErrInvalidToken) {
		w.WriteHeader(http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		h.internalError(w, err)
		return nil, false
	}
	return actor, true
}

func (h *Handler) internalError(w http.ResponseWriter, err error, attrs ...any) {
	h.logger.Error("log-cache request failed", append([]any{"error", err}, attrs...)...)
	writeGatewayError(w, http.StatusInternalServerError, codeInternal, "internal error")
}

// readParams are the decoded query parameters of a read.
type readParams struct {
	query Query
	// logs is false when the requested envelope types or name filter
	// exclude log envelopes, the only type the store holds.
	logs bool
}

// parseReadParams decodes a read's query parameters as log-cache's gateway
// does. Unknown parameters are ignored, as the gateway ignores them.
func parseReadParams(r *http.Request, now time.Time) (readParams, error) {
	values := r.URL.Query()
	p := readParams{logs: true}

	start, err := int64Param(values.Get("start_time"), "start_time")
	if err != nil {
		return p, err
	}
	end, err := int64Param(values.Get("end_time"), "end_time")
	if err != nil {
		return p, err
	}
	limit, err := int64Param(values.Get("limit"), "limit")
	if err != nil {
		return p, err
	}
	if end != 0 && start > end {
		return p, fmt.Errorf("start_time %d is after end_time %d: use a start_time at or before end_time", start, end)
	}
	if limit < 0 || limit > MaxReadLimit {
		return p, fmt.Errorf("limit %d is out of range: use 1 to %d, or 0 for %d", limit, MaxReadLimit, DefaultReadLimit)
	}
	if end == 0 {
		end = now.UnixNano()
	}
	if limit == 0 {
		limit = DefaultReadLimit
	}
	p.query = Query{Start: start, End: end, Limit: int(limit)}

	if v := values.Get("descending"); v != "" {
		if p.query.Descending, err = strconv.ParseBool(v); err != nil {
			return p, fmt.Errorf("descending %q is invalid: use true or false", v)
		}
	}

	types, err := envelopeTypeParams(values["envelope_types"])
	if err != nil {
		return p, err
	}
	if len(types) > 0 && !slices.Contains(types, "LOG") && !slices.Contains(types, "1") {
		p.logs = false
	}

	// log-cache matches the name filter against counter, gauge and timer
	// names, so no log envelope passes any filter.
	if v := values.Get("name_filter"); v != "" {
		if _, err := regexp.Compile(v); err != nil {
			return p, fmt.Errorf("name_filter %q is not a valid regular expression: %v", v, err)
		}
		p.logs = false
	}
	return p, nil
}

// int64Param parses a decimal integer parameter; empty means 0.
func int64Param(v, name string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q is invalid: use a decimal integer", name, v)
	}
	return n, nil
}

// envelopeTypeParams validates envelope_types values and returns them
// without ANY, which selects every type.
func envelopeTypeParams(values []string) ([]string, error) {
	var types []string
	for _, v := range values {
		if !envelopeTypes[v] {
			return nil, fmt.Errorf("envelope_types %q is invalid: use LOG, COUNTER, GAUGE, TIMER, EVENT or ANY", v)
		}
		if v != "ANY" && v != "0" {
			types = append(types, v)
		}
	}
	return types, nil
}

// appendReadResponse appends {"envelopes":{"batch":[…]}} with each envelope
// in the protobuf JSON form log-cache sends: timestamp as a decimal string,
// payload in standard base64.
func appendReadResponse(b []byte, batch []Envelope) []byte {
	b = append(b, `{"envelopes":{"batch":[`...)
	for i, e := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"timestamp":"`...)
		b = strconv.AppendInt(b, e.Timestamp, 10)
		b = append(b, `","source_id":`...)
		b = appendJSONString(b, e.SourceID)
		b = append(b, `,"instance_id":`...)
		b = appendJSONString(b, e.InstanceID)
		b = append(b, `,"tags":{"source_type":`...)
		b = appendJSONString(b, e.SourceType)
		b = append(b, `},"log":{"payload":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Payload)
		b = append(b, `","type":`...)
		b = appendJSONString(b, e.Stream)
		b = append(b, "}}"...)
	}
	return append(b, "]}}\n"...)
}

// appendJSONString appends s as a JSON string. Plain printable ASCII, which
// GUIDs, instance indexes and source types are, is copied as is.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			encoded, _ := json.Marshal(s)
			return append(b, encoded...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// writeGatewayError writes an error in the form of log-cache's HTTP gateway,
// a google.rpc.Status.
func writeGatewayError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, struct {
		Code    int      `json:"code"`
		Message string   `json:"message"`
		Details []string `json:"details"`
	}{Code: code, Message: message, Details: []string{}})
}

// statusRecorder captures the status code for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
