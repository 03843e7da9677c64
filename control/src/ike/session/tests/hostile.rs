//! Garbage, truncated and replayed input.
