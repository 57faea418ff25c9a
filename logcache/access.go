package logcache

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/auth"
	"github.com/ferrycf/ferry/store"
)

// DefaultAccessTTL is how long Access reuses a verified token and an
// authorization decision. A tailing cf CLI polls about four times a second,
// so each poll would otherwise verify the token (a revocation lookup in
// PostgreSQL) and look up the app again.
const DefaultAccessTTL = 10 * time.Second

// maxCachedEntries bounds each of Access's caches. A full cache first drops
// its expired entries, and is emptied when none have expired.
const maxCachedEntries = 10000

// TokenVerifier verifies the Authorization header of a request. *auth.Service
// implements it: an empty header is CF-NotAuthenticated, a bad token
// CF-InvalidAuthToken, and other errors are internal.
type TokenVerifier interface {
	Authenticate(ctx context.Context, authorization string) (*auth.Actor, error)
}

// AppFinder returns the app guid when vis may see it and store.ErrNotFound
// otherwise. *store.Store implements it.
type AppFinder interface {
	App(ctx context.Context, vis store.Visibility, guid string) (store.App, error)
}

// ErrInvalidToken is returned by Actor for a missing or invalid token.
var ErrInvalidToken = errors.New("missing or invalid token")

// Access decides who may read a source. A source is an app guid, and an actor
// may read it when the actor may see the app. Admins, read-only admins and
// global auditors see every app. Other users see the apps of spaces where
// they hold any space role (developer, auditor, manager, supporter) and of
// orgs they manage. log-cache's authorization proxy allows the same set,
// because it lists the apps through Cloud Controller's GET /v3/apps with
// the user's token.
//
// Access caches verified tokens and decisions for its TTL, so a revoked
// token, a removed role or a deleted app still reads logs for up to the TTL.
type Access struct {
	tokens TokenVerifier
	apps   AppFinder
	ttl    time.Duration
	now    func() time.Time

	mu        sync.RWMutex
	actors    map[[sha256.Size]byte]cachedActor
	decisions map[decisionKey]cachedDecision
}

type cachedActor struct {
	actor   *auth.Actor
	expires time.Time
}

type decisionKey struct{ userGUID, sourceID string }

type cachedDecision struct {
	allowed bool
	expires time.Time
}

// NewAccess returns an Access that verifies tokens with tokens and looks
// apps up in apps. A ttl of zero or less means DefaultAccessTTL.
func NewAccess(tokens TokenVerifier, apps AppFinder, ttl time.Duration) *Access {
	if ttl <= 0 {
		ttl = DefaultAccessTTL
	}
	return &Access{
		tokens:    tokens,
		apps:      apps,
		ttl:       ttl,
		now:       time.Now,
		actors:    map[[sha256.Size]byte]cachedActor{},
		decisions: map[decisionKey]cachedDecision{},
	}
}

// Actor returns the actor of an Authorization header value. A missing or
// invalid token is ErrInvalidToken; other errors are internal. Only valid
// tokens are cached, keyed by their SHA-256, and never past their expiry.
func (a *Access) Actor(ctx context.Context, authorization string) (*auth.Actor, error) {
	key := tokenKey(authorization)
	now := a.now()

	a.mu.RLock()
	cached, ok := a.actors[key]
	a.mu.RUnlock()
	if ok && now.Before(cached.expires) {
		return cached.actor, nil
	}

	actor, err := a.tokens.Authenticate(ctx, authorization)
	if err != nil {
		var apiErr *apierr.Error
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
			return nil, ErrInvalidToken
		}
		return nil, err
	}

	expires := now.Add(a.ttl)
	if !actor.ExpiresAt.IsZero() && actor.ExpiresAt.Before(expires) {
		expires = actor.ExpiresAt
	}
	a.mu.Lock()
	makeRoom(a.actors, now, func(c cachedActor) time.Time { return c.expires })
	a.actors[key] = cachedActor{actor: actor, expires: expires}
	a.mu.Unlock()
	return actor, nil
}

// tokenKey keys the token cache, so that the cache holds no tokens.
func tokenKey(authorization string) [sha256.Size]byte {
	return sha256.Sum256([]byte(authorization))
}

// CanRead reports whether actor may read sourceID. Tokens without
// cloud_controller.read (or a read-all scope) may read nothing, as Cloud
// Controller lists no apps for them.
func (a *Access) CanRead(ctx context.Context, actor *auth.Actor, sourceID string) (bool, error) {
	if actor.ReadsAll() {
		return true, nil
	}
	if !actor.CanRead() {
		return false, nil
	}

	key := decisionKey{userGUID: actor.UserGUID, sourceID: sourceID}
	now := a.now()
	a.mu.RLock()
	cached, ok := a.decisions[key]
	a.mu.RUnlock()
	if ok && now.Before(cached.expires) {
		return cached.allowed, nil
	}

	_, err := a.apps.App(ctx, store.VisibilityFor(actor), sourceID)
	allowed := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}

	a.mu.Lock()
	makeRoom(a.decisions, now, func(c cachedDecision) time.Time { return c.expires })
	a.decisions[key] = cachedDecision{allowed: allowed, expires: now.Add(a.ttl)}
	a.mu.Unlock()
	return allowed, nil
}

// makeRoom keeps m below maxCachedEntries before an insert: it deletes the
// expired entries, and every entry when none had expired.
func makeRoom[K comparable, V any](m map[K]V, now time.Time, expires func(V) time.Time) {
	if len(m) < maxCachedEntries {
		return
	}
	for k, v := range m {
		if !now.Before(expires(v)) {
			delete(m, k)
		}
	}
	if len(m) >= maxCachedEntries {
		clear(m)
	}
}
