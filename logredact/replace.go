package logredact

import (
	"context"
	"log/slog"
	"unicode/utf8"
)

// ReplaceAttr anonymizes the IP addresses of one attribute, as Handle does
// for a whole record. Its method value is meant for the ReplaceAttr field
// of the slog.HandlerOptions given to slog.NewJSONHandler or
// slog.NewTextHandler, which call it for every attribute that is not a
// group, the built-in message included, after resolving LogValuers:
//
//	red := logredact.NewHandler(slog.NewJSONHandler(w, nil), opts) // audit records
//	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: red.ReplaceAttr}))
//
// The Handler must copy every record that holds an address; ReplaceAttr
// changes the attribute as the JSON or text handler writes it. Yet slog
// makes any ReplaceAttr function costly (the built-in attributes take the
// general path, and the function is called for each attribute): against a
// bare JSONHandler, the Handler is the faster of the two. ReplaceAttr
// suits a JSON or text handler that has a ReplaceAttr function already,
// where it costs a little less than the Handler (the package documentation
// has the figures). The Handler wraps any slog.Handler; ReplaceAttr works
// only where the final handler takes slog.HandlerOptions.
//
// The built-in level is returned as its string (slog.Level.String), which
// the standard handlers write as they write the Level, but faster.
//
// It shares h's Options, key ring and maintenance window: Reveal and
// Conceal on h open and close the window for both. The audit records of the
// window go to the handler h wraps; when that handler and the one that
// calls ReplaceAttr write to the same io.Writer, the writer must be safe
// for concurrent writes (RotatingFile and os.File are). Or let h wrap the
// very handler that calls its ReplaceAttr, through a closure, so that one
// handler writes everything:
//
//	var red *logredact.Handler
//	json := slog.NewJSONHandler(w, &slog.HandlerOptions{ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
//		return red.ReplaceAttr(g, a)
//	}})
//	red = logredact.NewHandler(json, opts)
//	logger := slog.New(json)
//
// Inside a window, the
// built-in message (key slog.MessageKey, no group) is returned as a group
// without key, which the standard handlers write inline, holding the
// message and the Options.RevealedKey attribute (true): the record is
// marked where the Handler marks it. The message is then a value of kind
// slog.KindAny, written like the string.
//
// Three differences from the Handler remain, all due to what slog lets
// ReplaceAttr change:
//
//   - group names (slog.Group keys and Logger.WithGroup names) are not
//     passed to ReplaceAttr and are written as they are: do not use
//     addresses as group names;
//   - attributes bound with Logger.With are passed to ReplaceAttr once,
//     when bound, and written as anonymized at that moment: bound inside a
//     maintenance window they keep the full address for the life of that
//     logger, and under Pseudonymize they keep the pseudonym of the day they
//     were bound. Bind addresses to long-lived loggers only through the
//     Handler, or log them with each record;
//   - the window is checked for each attribute, not once per record: a
//     record written as the window opens or closes may have some addresses
//     in full and others not, and be marked or not.
//
// An error writing the end record of an expired window cannot be returned
// and is dropped; Conceal returns it.
//
// To combine it with a ReplaceAttr function of your own, chain them with
// ChainReplaceAttr, this one first.
func (h *Handler) ReplaceAttr(groups []string, a slog.Attr) slog.Attr {
	if l, ok := builtinLevel(groups, a); ok {
		// Written as the same text, but without the trip through
		// encoding/json that a slog.Level value takes in the JSONHandler.
		return slog.String(slog.LevelKey, l.String())
	}
	s := h.st
	if s.window.Load() == nil {
		// The common case: no window, nothing to close.
		if !mayChange(a) {
			return a
		}
		na, _ := s.an.view().attr(a)
		return na
	}
	v, revealed, _, _ := s.state(context.Background())
	if !revealed {
		if !mayChange(a) {
			return a
		}
		na, _ := v.attr(a)
		return na
	}
	if len(groups) == 0 && a.Key == slog.MessageKey && a.Value.Kind() == slog.KindString {
		return slog.Attr{Value: slog.GroupValue(
			slog.Any(slog.MessageKey, revealedMessage(a.Value.String())),
			slog.Bool(s.an.revealKey, true),
		)}
	}
	return a
}

// revealedMessage is the message of a record written in a maintenance
// window, as ReplaceAttr returns it: a type of its own, so that the call
// slog makes for it after the marker was added passes it on unchanged.
type revealedMessage string

// MarshalJSON writes the message as the JSONHandler writes a string value
// (its escapes differ from those of encoding/json): quotes, backslashes and
// control characters escaped, \n, \r and \t by name, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped. The text handler prints the string as
// it prints a string value.
func (m revealedMessage) MarshalJSON() ([]byte, error) {
	const hex = "0123456789abcdef"
	s := string(m)
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"'), nil
}

// ChainReplaceAttr returns a ReplaceAttr function for slog.HandlerOptions
// that calls fns in order, each on the attribute returned by the one
// before; nil functions are skipped.
//
// The chain stops at a function that returns a group (as
// Handler.ReplaceAttr does for the message in a maintenance window) or an
// empty attribute: slog calls the whole chain again for each member of a
// returned group, and writes nothing for an empty attribute.
//
// Every function sees the built-in level as a slog.Level, as slog passes
// it, although Handler.ReplaceAttr returns it as a string: the chain hands
// the Level to the next function, and returns a Level still standing at the
// end as its string (written the same, faster).
//
// Put Handler.ReplaceAttr first, so that the functions after it see
// anonymized values and may rename or drop keys (the message key too)
// freely; a function that turns values into text that may hold an address
// must come before it.
func ChainReplaceAttr(fns ...func(groups []string, a slog.Attr) slog.Attr) func(groups []string, a slog.Attr) slog.Attr {
	var list []func([]string, slog.Attr) slog.Attr
	for _, f := range fns {
		if f != nil {
			list = append(list, f)
		}
	}
	return func(groups []string, a slog.Attr) slog.Attr {
		lvl, isLevel := builtinLevel(groups, a)
		for i, f := range list {
			a = f(groups, a)
			if a.Value.Kind() == slog.KindGroup || isEmpty(a) {
				return a
			}
			if isLevel && i+1 < len(list) && a.Value.Kind() == slog.KindString && a.Value.String() == lvl.String() {
				a.Value = slog.AnyValue(lvl)
			}
		}
		if isLevel && a.Value.Kind() == slog.KindAny {
			if l, ok := a.Value.Any().(slog.Level); ok {
				a.Value = slog.StringValue(l.String())
			}
		}
		return a
	}
}

// builtinLevel returns the level of a when a is the built-in level
// attribute (or an attribute that looks the same).
func builtinLevel(groups []string, a slog.Attr) (slog.Level, bool) {
	if len(groups) != 0 || a.Key != slog.LevelKey || a.Value.Kind() != slog.KindAny {
		return 0, false
	}
	l, ok := a.Value.Any().(slog.Level)
	return l, ok
}

// isEmpty reports whether a is the empty attribute, which handlers omit.
func isEmpty(a slog.Attr) bool {
	return a.Key == "" && a.Value.Kind() == slog.KindAny && a.Value.Any() == nil
}
