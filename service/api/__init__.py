"""HTTP routers; each translates HTTP to service calls and nothing more."""
