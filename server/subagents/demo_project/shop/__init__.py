"""The sample shop: user lookups and the admin search page."""
