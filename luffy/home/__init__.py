"""The home page: banners, served from the cache."""
