package cfapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ferrycf/ferry/apierr"
	"github.com/ferrycf/ferry/appbits"
)

// maxResourceMatches is Cloud Controller's limit on resources per match
// request, and the cf CLI sends chunks of at most this many.
const maxResourceMatches = 5000

// maxResourceMatchBodyBytes bounds a match request: 5000 resources with
// paths up to the 4096-byte Linux limit need at most about 21 MB, and
// typical paths need a small fraction of that.
const maxResourceMatchBodyBytes = 24 << 20

// resourceMatchPayload is the body of POST /v3/resource_matches.
type resourceMatchPayload struct {
	Resources []resourcePayload `json:"resources"`
}

// resourceMatchJSON is one matched resource. The cf CLI parses mode as an
// octal string and fails the push when it is missing or empty.
type resourceMatchJSON struct {
	Checksum    checksumValueJSON `json:"checksum"`
	SizeInBytes int64             `json:"size_in_bytes"`
	Path        string            `json:"path"`
	Mode        string            `json:"mode"`
}

type checksumValueJSON struct {
	Value string `json:"value"`
}

// createResourceMatches serves POST /v3/resource_matches: it returns the
// posted resources whose content the resource cache has, so the cf CLI
// leaves them out of the upload. With the resource_matching feature flag
// off it matches nothing, and the CLI uploads every file.
func (a *API) createResourceMatches(r *http.Request) (*response, error) {
	ctx := r.Context()
	if err := requireRead(actorOf(r)); err != nil {
		return nil, err
	}
	if err := noQuery(r); err != nil {
		return nil, err
	}
	if err := a.requireFeature(ctx, flagAppBitsUpload); err != nil {
		return nil, err
	}
	var p resourceMatchPayload
	if err := decodeBodyLimit(r, &p, maxResourceMatchBodyBytes); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}

	matches := []resourceMatchJSON{}
	enabled, _, err := a.featureEnabled(ctx, flagResourceMatching)
	if err != nil {
		return nil, err
	}
	if !enabled {
		return created(map[string]any{"resources": matches}), nil
	}
	for _, res := range p.Resources {
		if m, ok := a.matchResource(res); ok {
			matches = append(matches, m)
		}
	}
	return created(map[string]any{"resources": matches}), nil
}

// matchResource reports whether the cache has res's content with res's
// size, and echoes res in the response's shape. As in Cloud Controller, a
// resource without a mode is never matched, since the response must carry
// one, and neither is an empty file, which the cache never contains.
func (a *API) matchResource(res resourcePayload) (resourceMatchJSON, bool) {
	if res.Mode == nil || res.Path == nil {
		return resourceMatchJSON{}, false
	}
	sum := strings.ToLower(*res.Checksum.Value)
	if !a.uploads.cache.Has(sum, *res.SizeInBytes) {
		return resourceMatchJSON{}, false
	}
	return resourceMatchJSON{
		Checksum:    checksumValueJSON{Value: *res.Checksum.Value},
		SizeInBytes: *res.SizeInBytes,
		Path:        *res.Path,
		Mode:        *res.Mode,
	}, true
}

// validate checks the request as Cloud Controller does, and with its
// messages: between 1 and 5000 resources, each with an object checksum
// holding a 40-character string value, a non-negative integer size and,
// when given, an octal mode string.
func (p *resourceMatchPayload) validate() error {
	switch {
	case p.Resources == nil:
		return apierr.UnprocessableEntity("Resources must be an array")
	case len(p.Resources) == 0:
		return apierr.UnprocessableEntity("Resources must have at least 1 resource")
	case len(p.Resources) > maxResourceMatches:
		return apierr.UnprocessableEntity(fmt.Sprintf("Resources array can have at most %d resources", maxResourceMatches))
	}
	const preamble = "Resources array contains at least one resource with "
	for _, res := range p.Resources {
		switch {
		case res.Checksum == nil:
			return apierr.UnprocessableEntity(preamble + "a non-object checksum")
		case res.Checksum.Value == nil:
			return apierr.UnprocessableEntity(preamble + "a non-string checksum value")
		case !appbits.ValidSHA1(strings.ToLower(*res.Checksum.Value)):
			return apierr.UnprocessableEntity(preamble + "a non-SHA1 checksum value")
		case res.SizeInBytes == nil:
			return apierr.UnprocessableEntity(preamble + "a non-integer size_in_bytes")
		case *res.SizeInBytes < 0:
			return apierr.UnprocessableEntity(preamble + "a negative size_in_bytes")
		}
		if res.Mode != nil {
			if _, err := strconv.ParseUint(*res.Mode, 8, 32); err != nil {
				return apierr.UnprocessableEntity(preamble + "an incorrect mode")
			}
		}
	}
	return nil
}
