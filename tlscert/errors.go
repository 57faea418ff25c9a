package tlscert

import "fmt"

// Problem classifies why an upload is invalid.
type Problem string

// Problems Validate reports.
const (
	ProblemDomainInvalid      Problem = "domain_invalid"
	ProblemCertificateInvalid Problem = "certificate_invalid"
	ProblemCAInvalid          Problem = "ca_certificate_invalid"
	ProblemKeyInvalid         Problem = "private_key_invalid"
	// ProblemKeyUnsupported is a key that parses but is too weak or of a
	// type TLS servers do not use.
	ProblemKeyUnsupported Problem = "private_key_unsupported"
	ProblemKeyMismatch    Problem = "key_mismatch"
	ProblemExpired        Problem = "expired"
	ProblemNotYetValid    Problem = "not_yet_valid"
	ProblemDomainMismatch Problem = "domain_mismatch"
	ProblemChainUntrusted Problem = "chain_untrusted"
)

// Upload fields, as the API names them.
const (
	FieldDomain        = "domain"
	FieldCertificate   = "certificate"
	FieldPrivateKey    = "private_key"
	FieldCACertificate = "ca_certificate"
)

// Error is an invalid upload. Message is written for the user who sent it:
// it names the field and the fix, and never contains key material.
type Error struct {
	Problem Problem
	// Field is the upload field the problem is in.
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }

func invalid(problem Problem, field, format string, a ...any) *Error {
	return &Error{Problem: problem, Field: field, Message: fmt.Sprintf(format, a...)}
}
