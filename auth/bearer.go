package auth

import (
	"context"
	"strings"

	"github.com/ferrycf/ferry/apierr"
)

// Authenticate verifies the bearer token in an Authorization header value
// ("bearer <token>", scheme in any case) and returns its actor. An empty
// header is CF-NotAuthenticated. A header of another scheme, and any token
// that Verify rejects, is CF-InvalidAuthToken.
func (s *Service) Authenticate(ctx context.Context, authorization string) (*Actor, error) {
	if authorization == "" {
		return nil, apierr.NotAuthenticated()
	}
	scheme, token, found := strings.Cut(authorization, " ")
	token = strings.TrimSpace(token)
	if !found || !strings.EqualFold(scheme, "bearer") || token == "" {
		return nil, apierr.InvalidAuthToken()
	}
	return s.Verify(ctx, token)
}
