package mam_test

import (
	"testing"

	"chatbx.eu/privacy/internal/apitest"
)

// maxExports bounds the package's top-level exported names (constants,
// variables, functions and types; methods and fields aside). Each one is
// needed by a server, a Store implementation or mamtest; a new one replaces
// an old one or raises this bound with a reason. The query and prefs
// parsers are reached only through the Handler (servers on other XMPP
// libraries call Handler.HandleIQ with their own token stream).
const maxExports = 40

func TestExportCount(t *testing.T) { apitest.ExportCount(t, ".", maxExports) }
