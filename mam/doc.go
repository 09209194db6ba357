// Package mam implements the server side of XEP-0313 Message Archive
// Management for one-to-one chats and group chats (XEP-0045 rooms), with
// XEP-0441 preferences whose default is "never" (archiving is opt-in),
// XEP-0359 stanza-ids and XEP-0334 processing hints.
package mam
