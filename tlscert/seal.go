package tlscert

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// KeySize is the length in bytes of a certificate key, an AES-256 key.
const KeySize = 32

// Sealed value layout, version 1:
//
//	version (1) | key id (8) | wrap nonce (12) | wrapped data key (32 + 16) | data nonce (12) | ciphertext + tag
const (
	sealVersion   = 1
	keyIDSize     = 8
	nonceSize     = 12
	tagSize       = 16
	wrappedSize   = KeySize + tagSize
	sealHeaderLen = 1 + keyIDSize + nonceSize + wrappedSize + nonceSize
)

var (
	// ErrOtherKey means a value was sealed with another certificate key
	// than the one configured, e.g. after the key was changed or on an
	// API replica that generated its own.
	ErrOtherKey = errors.New("the value was sealed with a different certificate key")
	// ErrCorrupt means a sealed value failed authentication: it was
	// changed, truncated, or moved to another record.
	ErrCorrupt = errors.New("the sealed value is corrupt or belongs to another record")
)

// Sealer encrypts private keys for storage with an envelope: each value is
// encrypted with its own random data key, and the data key is encrypted
// with the installation's certificate key. Both steps use AES-256-GCM and
// authenticate the caller's associated data, so a sealed value opens only
// for the record it was sealed for. A Sealer holds no copy of the key
// bytes and is safe for concurrent use.
type Sealer struct {
	keyWrap cipher.AEAD
	keyID   [keyIDSize]byte
}

// NewSealer returns a Sealer for a KeySize-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("certificate key is %d bytes: it must be %d", len(key), KeySize)
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	s := &Sealer{keyWrap: aead}
	copy(s.keyID[:], keyID(key))
	return s, nil
}

// keyID identifies a key without revealing it: a hash prefix under a
// label of its own, so a wrong key is reported as such and not as
// corruption.
func keyID(key []byte) []byte {
	h := sha256.New()
	h.Write([]byte("ferry certificate key id\x00"))
	h.Write(key)
	return h.Sum(nil)[:keyIDSize]
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("certificate key: %w", err)
	}
	return cipher.NewGCM(block)
}

// Seal encrypts plaintext for the record that associatedData identifies,
// such as its guid.
func (s *Sealer) Seal(plaintext, associatedData []byte) ([]byte, error) {
	dataKey := make([]byte, KeySize)
	defer clear(dataKey)
	if _, err := rand.Read(dataKey); err != nil {
		return nil, fmt.Errorf("generate data key: %w", err)
	}
	data, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}

	out := make([]byte, 0, sealHeaderLen+len(plaintext)+tagSize)
	out = append(out, sealVersion)
	out = append(out, s.keyID[:]...)

	wrapNonce := make([]byte, nonceSize)
	dataNonce := make([]byte, nonceSize)
	if _, err := rand.Read(wrapNonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	if _, err := rand.Read(dataNonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	out = append(out, wrapNonce...)
	out = s.keyWrap.Seal(out, wrapNonce, dataKey, associatedData)
	out = append(out, dataNonce...)
	return data.Seal(out, dataNonce, plaintext, associatedData), nil
}

// Open decrypts a value Seal returned for the same associatedData. It
// returns ErrOtherKey for a value sealed with another key and ErrCorrupt
// for one that fails authentication.
func (s *Sealer) Open(sealed, associatedData []byte) ([]byte, error) {
	if len(sealed) < sealHeaderLen+tagSize || sealed[0] != sealVersion {
		return nil, ErrCorrupt
	}
	rest := sealed[1:]
	id, rest := rest[:keyIDSize], rest[keyIDSize:]
	if subtle.ConstantTimeCompare(id, s.keyID[:]) != 1 {
		return nil, ErrOtherKey
	}
	wrapNonce, rest := rest[:nonceSize], rest[nonceSize:]
	wrapped, rest := rest[:wrappedSize], rest[wrappedSize:]
	dataNonce, ciphertext := rest[:nonceSize], rest[nonceSize:]

	dataKey, err := s.keyWrap.Open(nil, wrapNonce, wrapped, associatedData)
	if err != nil {
		return nil, ErrCorrupt
	}
	defer clear(dataKey)
	data, err := newGCM(dataKey)
	if err != nil {
		return nil, err
	}
	plaintext, err := data.Open(nil, dataNonce, ciphertext, associatedData)
	if err != nil {
		return nil, ErrCorrupt
	}
	return plaintext, nil
}
