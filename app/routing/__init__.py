"""Routing (分拨): the taxonomy, versioned routing tables and explained decisions."""
