package main

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/xml"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
)

// Moderated rooms, voice and password-protected rooms (XEP-0045 §§ 7.2.6,
// 8.3–8.5, 10.2).
//
// Roles: the owner and admins are moderators. In a moderated room
// (muc#roomconfig_moderatedroom) an occupant without an affiliation enters
// as a visitor and may not send messages to all occupants (forbidden) nor
// change the subject, until a moderator grants voice (a muc#admin set of
// role participant by nick); members enter as participants, and a
// moderator may revoke a participant's voice (role visitor). Roles are
// kept in memory for the occupant's stay; a change of affiliation resets
// the role to its default. The moderator role is not granted by nick:
// it follows the admin affiliation.
//
// Passwords: a room with muc#roomconfig_passwordprotectedroom on and a
// muc#roomconfig_roomsecret admits only occupants who give that password
// in the join presence's <password/> (not-authorized otherwise); the owner
// needs none. The secret is stored as a salted PBKDF2-SHA-256 hash, never
// in clear, and the configuration form never shows it. Since a MAM query
// carries no password, the archive of a password-protected room is read
// only by its owner, admins and members and by current occupants.
const (
	fieldModerated         = "muc#roomconfig_moderatedroom"
	fieldPasswordProtected = "muc#roomconfig_passwordprotectedroom"
	fieldRoomSecret        = "muc#roomconfig_roomsecret"

	roleVisitor = "visitor"

	maxRoomSecretBytes = 256
	roomSecretIter     = 4096 // PBKDF2 iterations; a join is not a login
)

// roleOf is occupant s's role in r.
func (r *room) roleOf(s *session) string {
	aff := r.affiliation(s.jid)
	if roleFor(aff) == roleModerator {
		return roleModerator
	}
	if role, ok := r.roles[s]; ok {
		return role
	}
	if r.moderated && aff == affiliationNone {
		return roleVisitor
	}
	return roleParticipant
}

// setRole gives occupant s an explicit role (participant or visitor).
func (r *room) setRole(s *session, role string) {
	if r.roles == nil {
		r.roles = make(map[*session]string)
	}
	r.roles[s] = role
}

// hashRoomSecret is the stored form of a room password.
func hashRoomSecret(secret string, salt []byte) []byte {
	k, err := pbkdf2.Key(sha256.New, secret, salt, roomSecretIter, sha256.Size)
	if err != nil {
		panic(err) // only for a key length out of range, which this is not
	}
	return k
}

// newRoomSecret returns the salt and hash of a new room password.
func newRoomSecret(secret string) (salt, hash []byte) {
	salt = make([]byte, 16)
	_, _ = rand.Read(salt)
	return salt, hashRoomSecret(secret, salt)
}

// passwordProtected reports whether joining r takes a password.
func (r *room) passwordProtected() bool { return len(r.secretHash) > 0 }

// passwordOK reports whether the join presence e may enter r as far as
// the password goes: the room has none, user is its owner, or e carries
// the right one.
func (r *room) passwordOK(user jid.JID, e element) bool {
	if !r.passwordProtected() || r.affiliation(user) == affiliationOwn {
		return true
	}
	x, ok := e.child(xml.Name{Space: muc.NS, Local: "x"})
	if !ok {
		return false
	}
	pw, ok := x.child(xml.Name{Space: muc.NS, Local: "password"})
	if !ok {
		return false
	}
	given := pw.text()
	if len(given) > maxRoomSecretBytes {
		return false
	}
	return subtle.ConstantTimeCompare(hashRoomSecret(given, r.secretSalt), r.secretHash) == 1
}

// occupiedBy reports whether user (any resource) is an occupant of r.
func (r *room) occupiedBy(user jid.JID) bool {
	for _, o := range r.occupants {
		if o.jid.Bare().Equal(user.Bare()) {
			return true
		}
	}
	return false
}
