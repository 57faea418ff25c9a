// Package apierr is Ferry's one catalogue of Cloud Foundry API errors. Each
// error carries its HTTP status, its v3 code and title, and its v2 form, so
// the HTTP layer can render it for whichever API version the client called.
package apierr

import (
	"fmt"
	"net/http"
	"strings"
)

// Error is a client-visible API error. Detail is sent to the client as is, so
// it must never contain internal error text, tokens or secrets.
type Error struct {
	Status int
	Code   int
	Title  string
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Title, e.Code, e.Detail)
}

// Is matches another *Error with the same code, so errors.Is(err,
// &Error{Code: 10010}) style checks and sentinel comparisons work.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

func newError(status, code int, title, detail string) *Error {
	return &Error{Status: status, Code: code, Title: title, Detail: detail}
}

// NotAuthenticated is returned when a request that needs a token has none.
func NotAuthenticated() *Error {
	return newError(http.StatusUnauthorized, 10002, "CF-NotAuthenticated", "Authentication error")
}

// InvalidAuthToken is returned for a token that is malformed, forged, expired
// or revoked. The cf CLI matches on this title.
func InvalidAuthToken() *Error {
	return newError(http.StatusUnauthorized, 1000, "CF-InvalidAuthToken", "Invalid Auth Token")
}

// NotAuthorized is returned when the actor can see a resource but may not
// perform the action on it.
func NotAuthorized() *Error {
	return newError(http.StatusForbidden, 10003, "CF-NotAuthorized", "You are not authorized to perform the requested action")
}

// FeatureDisabled is returned when a feature flag forbids the action.
func FeatureDisabled(flag, customMessage string) *Error {
	detail := "Feature Disabled: " + flag
	if customMessage != "" {
		detail = "Feature Disabled: " + customMessage
	}
	return newError(http.StatusForbidden, 330002, "CF-FeatureDisabled", detail)
}

// NotFound is returned for a resource that does not exist or that the actor
// cannot see; the cf CLI matches details such as "App not found".
func NotFound(resource string) *Error {
	return newError(http.StatusNotFound, 10010, "CF-ResourceNotFound", resource+" not found")
}

// UnknownRequest is returned for a path Ferry does not serve.
func UnknownRequest() *Error {
	return newError(http.StatusNotFound, 10000, "CF-NotFound", "Unknown request")
}

// MethodNotAllowed is returned for a known path called with a method it does not serve.
func MethodNotAllowed() *Error {
	return newError(http.StatusMethodNotAllowed, 10000, "CF-NotFound", "Unknown request")
}

// UnprocessableEntity is returned for a well-formed request whose content is
// invalid. Detail names the field and the fix.
func UnprocessableEntity(detail string) *Error {
	return newError(http.StatusUnprocessableEntity, 10008, "CF-UnprocessableEntity", detail)
}

// UniquenessError is returned when a create or update collides with an
// existing resource where Cloud Controller uses CF-UniquenessError.
func UniquenessError(detail string) *Error {
	return newError(http.StatusUnprocessableEntity, 10016, "CF-UniquenessError", detail)
}

// BadQueryParameter is returned for an unknown or invalid query parameter.
func BadQueryParameter(detail string) *Error {
	return newError(http.StatusBadRequest, 10005, "CF-BadQueryParameter", "The query parameter is invalid: "+detail)
}

// MessageParseError is returned for a body that is not valid JSON.
func MessageParseError(detail string) *Error {
	return newError(http.StatusBadRequest, 1001, "CF-MessageParseError", "Request invalid due to parse error: "+detail)
}

// InvalidRequest is returned for a request that is structurally wrong in a
// way other than its body's syntax.
func InvalidRequest(detail string) *Error {
	return newError(http.StatusBadRequest, 10004, "CF-InvalidRequest", "The request is invalid: "+detail)
}

// Unknown is the only form an unexpected internal error takes on the wire;
// the real error is logged, never sent.
func Unknown() *Error {
	return newError(http.StatusInternalServerError, 10001, "CF-UnknownError", "An unknown error occurred.")
}

// ServiceUnavailable is returned when a dependency such as the database is down.
func ServiceUnavailable(detail string) *Error {
	return newError(http.StatusServiceUnavailable, 10015, "CF-ServiceUnavailable", detail)
}

// V3Body is the v3 wire form: {"errors":[{"code","title","detail"}]}.
type V3Body struct {
	Errors []V3Item `json:"errors"`
}

// V3Item is one entry of a v3 error body.
type V3Item struct {
	Code   int    `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

// V3 renders the error in the v3 format.
func (e *Error) V3() V3Body {
	return V3Body{Errors: []V3Item{{Code: e.Code, Title: e.Title, Detail: e.Detail}}}
}

// V2Body is the v2 wire form: {"code","description","error_code"}.
type V2Body struct {
	Code        int    `json:"code"`
	Description string `json:"description"`
	ErrorCode   string `json:"error_code"`
}

// V2 renders the error in the v2 format.
func (e *Error) V2() V2Body {
	return V2Body{Code: e.Code, Description: e.Detail, ErrorCode: e.Title}
}

// UAAError is an error from the UAA-compatible endpoints, which use the OAuth
// form {"error","error_description"} instead of Cloud Controller's.
type UAAError struct {
	Status      int
	Kind        string
	Description string
}

func (e *UAAError) Error() string { return e.Kind + ": " + e.Description }

// UAABody is the OAuth/UAA error wire form.
type UAABody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// Body renders the UAA error for the wire.
func (e *UAAError) Body() UAABody { return UAABody{Error: e.Kind, Description: e.Description} }

// BadCredentials is the UAA error for a wrong username or password. The cf
// CLI shows it as "Credentials were rejected".
func BadCredentials() *UAAError {
	return &UAAError{Status: http.StatusUnauthorized, Kind: "unauthorized", Description: "Bad credentials"}
}

// InvalidToken is the UAA error for a missing, expired or revoked token. The
// cf CLI refreshes its token once and retries on it.
func InvalidToken(description string) *UAAError {
	return &UAAError{Status: http.StatusUnauthorized, Kind: "invalid_token", Description: description}
}

// InsufficientScope is the UAA error for a token without a required scope.
func InsufficientScope(scopes ...string) *UAAError {
	return &UAAError{Status: http.StatusForbidden, Kind: "insufficient_scope",
		Description: "Insufficient scope for this resource: requires one of " + strings.Join(scopes, ", ")}
}

// InvalidRequestUAA is the OAuth invalid_request error.
func InvalidRequestUAA(description string) *UAAError {
	return &UAAError{Status: http.StatusBadRequest, Kind: "invalid_request", Description: description}
}

// UnsupportedGrantType is the OAuth error for an unknown grant_type.
func UnsupportedGrantType(grant string) *UAAError {
	return &UAAError{Status: http.StatusBadRequest, Kind: "unsupported_grant_type",
		Description: fmt.Sprintf("Unsupported grant type: %q. Use password, refresh_token or client_credentials.", grant)}
}

// InvalidClient is the OAuth error for unknown clients or wrong client secrets.
func InvalidClient() *UAAError {
	return &UAAError{Status: http.StatusUnauthorized, Kind: "invalid_client", Description: "Bad credentials"}
}

// InvalidSCIMResource is the SCIM error for a malformed user resource.
func InvalidSCIMResource(description string) *UAAError {
	return &UAAError{Status: http.StatusBadRequest, Kind: "invalid_scim_resource", Description: description}
}

// SCIMResourceAlreadyExists is the SCIM conflict error; the cf CLI reads 409
// as "user already exists".
func SCIMResourceAlreadyExists(description string) *UAAError {
	return &UAAError{Status: http.StatusConflict, Kind: "scim_resource_already_exists", Description: description}
}

// SCIMResourceNotFound is the SCIM error for an unknown user id.
func SCIMResourceNotFound(description string) *UAAError {
	return &UAAError{Status: http.StatusNotFound, Kind: "scim_resource_not_found", Description: description}
}

// InvalidPassword is the UAA error for a password change that fails policy.
func InvalidPassword(description string) *UAAError {
	return &UAAError{Status: http.StatusUnprocessableEntity, Kind: "invalid_password", Description: description}
}
