"""Session stores: the truth for room state. Redis in deployment, embedded for a single node."""
