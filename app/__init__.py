"""roadchief: the backend of the 路长制 (road-chief system) of refined city management."""
