package mam

import "mellium.im/xmpp/disco/info"

// Features returns the disco#info features of a user's bare JID (and of the
// server) for the archive: urn:xmpp:mam:2, its #extended queries and the
// include-groupchat field. A server that answers disco#info per JID lists
// them for its users (mellium's disco.Handle answers the same for every
// to, with Handler.ForFeatures).
func Features() []string {
	return []string{NS, nsExt, nsGroupchatField}
}

// ForFeatures implements info.FeatureIter, so disco advertises the archive
// features of the Handler's mux. mellium's disco.Handle answers the same for
// every to: a server that serves disco per JID uses Features and
// RoomFeatures instead.
func (h *Handler) ForFeatures(node string, f func(info.Feature) error) error {
	if node != "" {
		return nil
	}
	for _, v := range Features() {
		if err := f(info.Feature{Var: v}); err != nil {
			return err
		}
	}
	return nil
}
