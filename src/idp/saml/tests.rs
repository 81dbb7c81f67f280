//! Unit tests of the SAML pipeline's pure parts.
