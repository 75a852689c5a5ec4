"""Why a slot ran or did not, why a delivery did what it did: pure builders, loaders, render."""
