//! RFC 3948 §2 classification (placeholder: being written).
