//! Fault steps: each injects one real fault into the real stack before it starts.
