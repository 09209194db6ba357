// Package internal holds code shared by the packages of chatbx.eu/privacy.
// Nothing here is part of the public API.
package internal
