package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"slices"
)

// OAuth grant types Ferry serves.
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// CFClientID is the OAuth client of the cf CLI. It has an empty secret and
// may use the password and refresh_token grants.
const CFClientID = "cf"

// Client is an OAuth client as configured: an id, a secret and the scopes
// its client_credentials tokens carry.
type Client struct {
	ID     string
	Secret string
	Scopes []string
}

// client is a registered OAuth client. Only a digest of the secret is kept,
// so comparisons take constant time whatever the secret's length.
type client struct {
	id           string
	secretDigest [sha256.Size]byte
	scopes       []string
	grants       []string
}

// AuthenticatedClient is an OAuth client whose credentials were checked.
type AuthenticatedClient struct {
	ID     string
	Scopes []string
	grants []string
}

// Allows reports whether the client may use grant.
func (c AuthenticatedClient) Allows(grant string) bool { return slices.Contains(c.grants, grant) }

func newClients(configured []Client) map[string]client {
	clients := map[string]client{
		CFClientID: {id: CFClientID, secretDigest: sha256.Sum256(nil), grants: []string{GrantPassword, GrantRefreshToken}},
	}
	for _, c := range configured {
		clients[c.ID] = client{
			id:           c.ID,
			secretDigest: sha256.Sum256([]byte(c.Secret)),
			scopes:       slices.Clone(c.Scopes),
			grants:       []string{GrantClientCredentials},
		}
	}
	return clients
}

// AuthenticateClient checks a client's id and secret. It returns false for an
// unknown client or a wrong secret.
func (s *Service) AuthenticateClient(id, secret string) (AuthenticatedClient, bool) {
	c, known := s.clients[id]
	digest := sha256.Sum256([]byte(secret))
	if !known {
		// Compare anyway, so unknown ids take as long as wrong secrets.
		placeholder := sha256.Sum256(nil)
		subtle.ConstantTimeCompare(digest[:], placeholder[:])
		return AuthenticatedClient{}, false
	}
	if subtle.ConstantTimeCompare(digest[:], c.secretDigest[:]) != 1 {
		return AuthenticatedClient{}, false
	}
	return AuthenticatedClient{ID: c.id, Scopes: slices.Clone(c.scopes), grants: c.grants}, true
}
