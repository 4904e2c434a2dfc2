//! Desired-state writes and reads for the API.
