// Command server is a TLS-only XMPP provider that wires every package of
// chatbx.eu/privacy together.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "examples/server: not built yet")
	os.Exit(1)
}
