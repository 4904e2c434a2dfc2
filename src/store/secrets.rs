//! Encrypted secret rows.
