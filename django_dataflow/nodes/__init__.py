"""Node classes: the ModelNode base, one mixin per operation, and the class factory."""
