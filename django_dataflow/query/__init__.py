"""MongoDB-style filters, sorting and projection translated to Django querysets."""
