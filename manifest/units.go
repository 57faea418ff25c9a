package manifest

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Byte quantities in manifests are a number and a unit, such as "256M",
// "1.5G" or "512KB". Every unit is a power of 1024, with or without "B"
// and "i": K, KB and KiB all mean 1024 bytes. A bare number has no unit
// and is invalid, as in Cloud Controller.
var (
	byteQuantity = regexp.MustCompile(`(?i)^(-?\d+(?:\.\d+)?)([KMGT]i?B?|B)$`)
	// leadingNumber is what makes a value "a number" at all: Cloud
	// Controller distinguishes "not a number" from "no supported unit" this
	// way.
	leadingNumber = regexp.MustCompile(`^-?\d+(?:\.\d+)?`)
)

// Errors of ParseBytes, worded as Cloud Controller's messages end.
var (
	errNotANumber  = errors.New("is not a number")
	errInvalidUnit = errors.New("must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB")
)

const megabyte = 1024 * 1024

// ParseBytes converts a byte quantity such as "256M" to bytes. Fractions
// of a byte are dropped.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if !leadingNumber.MatchString(s) {
		return 0, errNotANumber
	}
	m := byteQuantity.FindStringSubmatch(s)
	if m == nil {
		return 0, errInvalidUnit
	}
	value, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, errNotANumber
	}
	switch strings.ToUpper(m[2][:1]) {
	case "T":
		value *= 1 << 40
	case "G":
		value *= 1 << 30
	case "M":
		value *= 1 << 20
	case "K":
		value *= 1 << 10
	}
	if math.Abs(value) > math.MaxInt64/2 {
		return 0, errInvalidUnit
	}
	return int64(value), nil
}

// ParseMegabytes converts a byte quantity to whole megabytes, rounding
// down: "1.5G" is 1536 and "512K" is 0.
func ParseMegabytes(s string) (int64, error) {
	bytes, err := ParseBytes(s)
	if err != nil {
		return 0, err
	}
	return bytes / megabyte, nil
}

// FormatMegabytes renders a size in megabytes the way manifests show
// memory and disk: "1024M".
func FormatMegabytes(mb int64) string { return strconv.FormatInt(mb, 10) + "M" }

// FormatBytes renders bytes in the largest unit that divides them evenly,
// such as "1M", "512K" or "1000B", as manifests show log rate limits.
func FormatBytes(bytes int64) string {
	units := []string{"T", "G", "M", "K"}
	for i, unit := range units {
		size := int64(1) << (10 * (len(units) - i))
		if bytes != 0 && bytes%size == 0 {
			return strconv.FormatInt(bytes/size, 10) + unit
		}
	}
	return strconv.FormatInt(bytes, 10) + "B"
}

// MaxCPUMillicores is the largest CPU limit a manifest may set: the
// column that stores it is a 32-bit integer.
const MaxCPUMillicores = math.MaxInt32

// cpuQuantity matches a CPU amount as Kubernetes writes it, in whole or
// fractional CPUs ("2", "0.5") or in millicores ("500m"), down to whole
// millicores. tooFineCPU matches fractions finer than a millicore.
var (
	cpuQuantity = regexp.MustCompile(`^(?:(\d+)m|(\d+)(?:\.(\d{1,3}))?)$`)
	tooFineCPU  = regexp.MustCompile(`^\d+\.\d{4,}$`)
)

// Errors of ParseCPU, worded as the ends of manifest messages.
var (
	errCPUSyntax   = errors.New("must be a number of CPUs such as 2 or 0.5, or of millicores such as 500m")
	errCPUTooFine  = errors.New("must be a whole number of millicores: use at most 3 decimal places, or millicores such as 1250m")
	errCPUZero     = errors.New("must be greater than 0")
	errCPUTooLarge = fmt.Errorf("must be less than or equal to %dm", MaxCPUMillicores)
)

// ParseCPU converts a CPU amount such as "2", "0.5" or "500m" to
// millicores, from 1 to MaxCPUMillicores.
func ParseCPU(s string) (int64, error) {
	s = strings.TrimSpace(s)
	m := cpuQuantity.FindStringSubmatch(s)
	if m == nil {
		if tooFineCPU.MatchString(s) {
			return 0, errCPUTooFine
		}
		return 0, errCPUSyntax
	}
	var millicores int64
	var err error
	if m[1] != "" {
		millicores, err = strconv.ParseInt(m[1], 10, 64)
	} else {
		fraction := (m[3] + "000")[:3]
		millicores, err = strconv.ParseInt(m[2]+fraction, 10, 64)
	}
	switch {
	case err != nil || millicores > MaxCPUMillicores:
		return 0, errCPUTooLarge
	case millicores == 0:
		return 0, errCPUZero
	}
	return millicores, nil
}

// FormatCPU renders millicores as manifests show a CPU limit: whole CPUs
// as a number, such as 2, and anything else in millicores, such as
// "1500m".
func FormatCPU(millicores int64) any {
	if millicores%1000 == 0 {
		return millicores / 1000
	}
	return strconv.FormatInt(millicores, 10) + "m"
}
