//! Sample claims for trying the worker out.
