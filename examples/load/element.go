package main

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// node is a small XML element tree: enough to read IQ answers, message
// bodies, upload slots and MAM results.
type node struct {
	Name     xml.Name
	Attr     []xml.Attr
	Text     string
	Children []*node
}

// maxNodeDepth bounds the nesting readNode accepts from a server.
const maxNodeDepth = 64

var errTooDeep = errors.New("load: element nested too deeply")

// readNode reads the element that start opens from r (up to and including
// its end element).
func readNode(r xml.TokenReader, start xml.StartElement) (*node, error) {
	root := &node{Name: start.Name, Attr: start.Attr}
	stack := []*node{root}
	var text strings.Builder
	for len(stack) > 0 {
		tok, err := r.Token()
		if err == io.EOF && tok == nil {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil && tok == nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxNodeDepth {
				return nil, errTooDeep
			}
			n := &node{Name: t.Name, Attr: t.Copy().Attr}
			top := stack[len(stack)-1]
			top.Children = append(top.Children, n)
			stack = append(stack, n)
		case xml.CharData:
			if len(stack) == 1 {
				text.Write(t)
			} else {
				stack[len(stack)-1].Text += string(t)
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	root.Text = text.String()
	return root, nil
}

// attr returns the value of the attribute local (any namespace), or "".
func (n *node) attr(local string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// child returns the first child named local in namespace space ("" for
// any), or nil.
func (n *node) child(space, local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.Name.Local == local && (space == "" || c.Name.Space == space) {
			return c
		}
	}
	return nil
}

// text is the character data of n, or "" for nil.
func (n *node) text() string {
	if n == nil {
		return ""
	}
	return n.Text
}

// errorCondition is the stanza error condition of an answer of type error,
// or "" when there is none.
func (n *node) errorCondition() string {
	e := n.child("", "error")
	if e == nil {
		return ""
	}
	for _, c := range e.Children {
		if c.Name.Local != "text" {
			return c.Name.Local
		}
	}
	return "undefined-condition"
}
