package mam

// Unexported helpers the black-box tests (package mam_test) call directly.
var (
	ParseTime       = parseTime
	FormatTime      = formatTime
	ParseBool       = parseBool
	ParseQueryBytes = parseQueryBytes
	ParsePrefsBytes = parsePrefsBytes
)

// Request is the parsed query the table tests compare against.
type Request = request
