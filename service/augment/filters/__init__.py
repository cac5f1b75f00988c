"""What a generated statement passes before it is kept: tidying, the contradiction gate, scoring."""
