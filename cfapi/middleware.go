package cfapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
)

var (
	errUnknownRequest   = apierr.UnknownRequest()
	errMethodNotAllowed = apierr.MethodNotAllowed()
)

type loggerKey struct{}
type routeKey struct{}

func loggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// withRouteName records the matched route template for the access log, so
// log lines group by endpoint and never contain query strings.
func withRouteName(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if holder, ok := r.Context().Value(routeKey{}).(*string); ok {
			*holder = name
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder captures the status code for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers flush through the recorder.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// requestContext gives every request an id (the client's X-Vcap-Request-Id
// when present, echoed back), a logger carrying it, and one access-log line.
// The line has the method, route template, status and duration; never the
// query string, headers or body, which can carry tokens and passwords.
func (a *API) requestContext(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Vcap-Request-Id")
		if id == "" || len(id) > 128 {
			id = newRequestID()
		}
		w.Header().Set("X-Vcap-Request-Id", id)

		logger := a.logger.With("request_id", id)
		routeName := "unmatched"
		ctx := withLogger(r.Context(), logger)
		ctx = context.WithValue(ctx, routeKey{}, &routeName)

		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(ctx))

		attrs := []any{"route", routeName, "status", rec.status, "duration_ms", time.Since(start).Milliseconds()}
		if actor := auth.ActorFrom(ctx); actor != nil {
			attrs = append(attrs, "user_guid", actor.UserGUID)
		}
		logger.Info("request", attrs...)
	})
}

// recoverPanics turns a handler panic into CF-UnknownError and a log line.
func (a *API) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.logger.Error("handler panic", "panic", v, "path", r.URL.Path)
				a.writeError(w, r, apierr.Unknown())
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// authenticate requires a valid bearer token and puts its actor in the
// request context. No token is CF-NotAuthenticated; a bad one is
// CF-InvalidAuthToken, which the cf CLI turns into "please log in again".
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		actor, err := a.auth.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		ctx := auth.WithActor(r.Context(), actor)
		ctx = withLogger(ctx, loggerFrom(ctx, a.logger).With("user_guid", actor.UserGUID))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
