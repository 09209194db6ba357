// Package account manages XMPP accounts with privacy in mind: Argon2id
// password hashes, XEP-0077 in-band registration, password change and
// removal, and deletion that erases every piece of stored data durably,
// along with export, correction and blocking of a user's data.
package account
