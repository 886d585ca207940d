"""Plain descriptions of what a guest is made from: instance and image."""
