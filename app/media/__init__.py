"""Photos: upload, verification and derived sizes with Pillow, content-addressed storage."""
