package account

import "chatbx.eu/privacy/internal/argon"

// Params are the Argon2id cost parameters (RFC 9106) of Config.Params.
// NewManager accepts t from 2 to 64, m from 19 MiB to 1 GiB and p from 1
// to 64; stored hashes outside those bounds are refused as malformed, so a
// corrupt or hostile hash cannot make a login cost more.
type Params struct {
	Time    uint32 // passes over memory (t)
	Memory  uint32 // memory in KiB (m)
	Threads uint8  // lanes (p)
}

// DefaultParams returns the parameters of a zero Config.Params, the second
// recommended option of RFC 9106 §4: t=3, m=64 MiB, p=4. Each hash in
// progress holds 64 MiB. A server that picks its parameters from a flag
// (as examples/server does) starts from it.
func DefaultParams() Params { return Params(argon.DefaultParams()) }

// MinParams returns the cheapest parameters NewManager accepts, the OWASP
// floor (m=19 MiB, t=2, p=1): for tests and development machines, where
// 64 MiB per login is slow (examples/server's tests use it).
func MinParams() Params { return Params(argon.MinParams()) }
