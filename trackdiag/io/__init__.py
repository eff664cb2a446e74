"""Reading what users bring: images and masks, latents, companion files paired by stem, tracker logs; the one
series type and the one CSV writer."""
