"""Statistics several phenomena read: ensemble decompositions over replicas, effective parameters
of linear smoothers."""
