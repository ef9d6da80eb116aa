"""Pixels: the tile grid over an AOI, windowed reads with validity masks, normalisation, synthetic scenes."""
