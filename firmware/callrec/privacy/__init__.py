"""Privacy features: the do-not-record list (objections), pseudonyms of numbers."""
