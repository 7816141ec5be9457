"""The specification as code: reference model, invariant checks and state machines."""
