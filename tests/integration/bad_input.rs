//! Bad input never panics: corpus and crafted files through the real executable.
