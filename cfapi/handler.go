// Package cfapi is Ferry's HTTP layer: the Cloud Foundry v3 and v2 API and
// the UAA-compatible endpoints. Handlers decode and validate requests, call
// the store, and return values; one adapter writes every response and turns
// errors into Cloud Foundry's wire formats.
package cfapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/store"
)

// response is a handler's result: a status, an optional JSON body and
// optional headers such as Location.
type response struct {
	status int
	body   any
	header http.Header
}

// handlerFunc is the shape of every Ferry handler.
type handlerFunc func(r *http.Request) (*response, error)

func ok(body any) *response      { return &response{status: http.StatusOK, body: body} }
func created(body any) *response { return &response{status: http.StatusCreated, body: body} }
func noContent() *response       { return &response{status: http.StatusNoContent} }

// accepted is the 202 response of an async operation. The cf CLI polls the
// Location header and treats a missing one as "already done".
func accepted(jobURL string, body any) *response {
	return &response{status: http.StatusAccepted, body: body, header: http.Header{"Location": {jobURL}}}
}

// serve adapts a handlerFunc to http.Handler: it writes the returned value or
// renders the error in the format of the API the client called.
func (a *API) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := h(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeResponse(w, resp)
	})
}

func writeResponse(w http.ResponseWriter, resp *response) {
	for k, vs := range resp.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if resp.body == nil {
		w.WriteHeader(resp.status)
		return
	}
	if stream, ok := resp.body.(*streamBody); ok {
		stream.writeTo(w, resp.status)
		return
	}
	if list, ok := resp.body.(listJSON); ok {
		writeList(w, resp.status, list)
		return
	}
	writeJSON(w, resp.status, resp.body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(data)
	w.Write([]byte("\n"))
}

// writeError renders err. API errors are sent as they are, and a
// store.ErrNotFound that escaped a handler becomes a generic 404. Any other
// error is logged in full and sent as CF-UnknownError, so internal text
// never reaches a client.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	logger := loggerFrom(r.Context(), a.logger)

	var uaaErr *apierr.UAAError
	if errors.As(err, &uaaErr) {
		logger.Info("request rejected", "status", uaaErr.Status, "error", uaaErr.Kind)
		writeJSON(w, uaaErr.Status, uaaErr.Body())
		return
	}

	var apiErr *apierr.Error
	switch {
	case errors.As(err, &apiErr):
		logger.Info("request rejected", "status", apiErr.Status, "code", apiErr.Code, "title", apiErr.Title)
	case errors.Is(err, store.ErrNotFound):
		apiErr = apierr.NotFound("Resource")
		logger.Info("request rejected", "status", apiErr.Status, "code", apiErr.Code)
	default:
		logger.Error("request failed", "error", err)
		apiErr = apierr.Unknown()
	}

	if isV2(r) {
		writeJSON(w, apiErr.Status, apiErr.V2())
		return
	}
	writeJSON(w, apiErr.Status, apiErr.V3())
}

func isV2(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/v2/") }
