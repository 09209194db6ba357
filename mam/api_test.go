package mam_test

import (
	"testing"

	"chatbx.eu/privacy/internal/apitest"
)

// maxExports bounds the package's top-level exported names (constants,
// variables, functions and types; methods and fields aside). Each one is
// needed by a server, a Store implementation or mamtest; a new one replaces
// an old one or raises this bound with a reason. 43 = 40 + the Archiver's
// arguments Chat, RoomMessage and Stanza (the struct-taking calls replaced
// four methods, which this count does not include).
const maxExports = 43

func TestExportCount(t *testing.T) { apitest.ExportCount(t, ".", maxExports) }
