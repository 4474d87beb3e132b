"""Near-duplicate groups over perceptual hashes (`smartray curate`)."""
