package mam

import "time"

// SetExpireHook sets a function called after each committed Expire
// transaction with the number of messages it deleted and its duration.
func SetExpireHook(s *BoltStore, f func(removed int, took time.Duration)) { s.expireTx = f }
