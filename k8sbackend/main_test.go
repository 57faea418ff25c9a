package k8sbackend

import (
	"testing"

	"github.com/ferrycf/ferry/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
