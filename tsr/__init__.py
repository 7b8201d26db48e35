"""tsr: scene-text image super-resolution (TSRN) trained together with a text recognizer (CRNN)."""
__version__ = "0.1.0"
