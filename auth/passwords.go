package auth

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// Password hashing costs. Ferry hashes at DefaultPasswordCost unless a test
// sets Config.WeakPasswordHashing.
const (
	DefaultPasswordCost = 10
	weakPasswordCost    = bcrypt.MinCost
	// MaxPasswordBytes is bcrypt's input limit. Longer passwords are
	// rejected instead of silently truncated.
	MaxPasswordBytes = 72
)

// ErrPasswordTooLong is returned for passwords bcrypt cannot hash whole.
var ErrPasswordTooLong = fmt.Errorf("password is longer than %d bytes", MaxPasswordBytes)

// HashPassword returns the bcrypt hash of password at the service's cost.
func (s *Service) HashPassword(password string) (string, error) {
	if len(password) > MaxPasswordBytes {
		return "", ErrPasswordTooLong
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.passwordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(hash), nil
}

// CheckPassword reports whether password matches hash. An empty hash (an
// unknown user, or one without a password) never matches, but still costs
// one bcrypt comparison, so response times do not tell which usernames exist.
func (s *Service) CheckPassword(hash, password string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return false
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	return err == nil
}

func dummyPasswordHash(cost int) []byte {
	hash, err := bcrypt.GenerateFromPassword([]byte("ferry-no-such-user"), cost)
	if err != nil {
		panic(errors.Join(errors.New("hash the placeholder password"), err)) // Only an invalid cost fails, and costs are constants.
	}
	return hash
}
