//! SAS tokens and group-key derivation.
