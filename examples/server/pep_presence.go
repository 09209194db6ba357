package main

import "mellium.im/xmpp/jid"

// sharesPresenceWith reports whether owner shares presence with contact,
// which is what the PEP access model "presence" asks (XEP-0060 § 4.5).
// Here: contact is in owner's roster (rosters are all "both").
//
// replaced by subscriptions
func (srv *Server) sharesPresenceWith(owner, contact jid.JID) bool {
	return srv.isLocalUser(owner) && srv.store.inRoster(owner.Localpart(), contact)
}
